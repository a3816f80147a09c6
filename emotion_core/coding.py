"""A researcher's own coding of recordings, read into labelled items: CSV, ELAN (.eaf) or Praat (.TextGrid).

* ``LABELS.csv`` with ``path,label[,speaker]``: one label per whole recording;
* a segment CSV with ``path,start,end,label[,speaker]`` (seconds): one label per coded stretch;
* an ELAN file: one tier's annotations over the recording its media descriptor names (or ``media``);
* a Praat TextGrid: one interval tier's non-empty intervals over ``media``.

Every coded segment becomes one ``LabelledFile`` with its span; ``own_data`` scores it from one
analysis of the whole recording. Label names map to the eight emotions case-insensitively with the
usual synonyms (``emotion_of``). Mistakes are ``ValueError`` with one human line that names the file
and the line, annotation or interval at fault. ELAN and Praat files are read by ``pympi-ling``.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pympi.Elan import Eaf
from pympi.Praat import TextGrid

from .constants import EMOTIONS
from .errors import MediaError
from .media import Limits, probe

SYNONYMS: dict[str, str] = {
    "neutral": "neutral", "neutrality": "neutral", "neu": "neutral",
    "calm": "calm", "calmness": "calm", "relaxed": "calm",
    "happy": "happy", "happiness": "happy", "joy": "happy", "joyful": "happy", "hap": "happy",
    "sad": "sad", "sadness": "sad",
    "angry": "angry", "anger": "angry", "ang": "angry",
    "fearful": "fearful", "fear": "fearful", "afraid": "fearful", "scared": "fearful", "fea": "fearful",
    "disgust": "disgust", "disgusted": "disgust", "dis": "disgust",
    "surprised": "surprised", "surprise": "surprised", "sur": "surprised",
}
"""Label names (lower case) and the emotion each means: the eight names, their noun or adjective forms and
the three-letter codes of IEMOCAP-style coding schemes."""
TIME_TOLERANCE_S = 0.1
"""A coded segment may end this far past the recording's end (container and stream lengths differ)."""
OVERLAP_TOLERANCE_S = 0.001
CODING_SUFFIXES = (".csv", ".eaf", ".textgrid")


@dataclass(frozen=True)
class LabelledFile:
    """One scored item: a whole recording, or the coded stretch ``start``-``end`` (seconds) of it."""

    path: Path
    label: str
    speaker: str | None = None
    start: float | None = None
    end: float | None = None
    where: str | None = None  # "line 4", "annotation a7", "interval 3": where the coding file says it

    @property
    def is_segment(self) -> bool:
        return self.start is not None


def emotion_of(label: str) -> str | None:
    """The emotion a coder's label names (case and surrounding space ignored), or None."""
    return SYNONYMS.get(label.strip().lower())


def parse_ignored(text: str | None) -> frozenset[str]:
    """``--ignore-labels X,Y`` -> the lower-case labels to skip."""
    return frozenset(x.strip().lower() for x in (text or "").split(",") if x.strip())


READING = re.compile(r"^\s*(\S+)\s+[0-9]*\.?[0-9]+\s*$")
"""A value as our own tiers write it, ``label confidence`` (``happy 0.78``): a tier exported by ``analyze --eaf``
and corrected by hand in ELAN reads back as a coding."""


def _label(raw: str, name: str, where: str, ignore: frozenset[str]) -> str | None:
    """The emotion of a coded label; None when it is to be skipped; ValueError when unknown."""
    if (m := READING.match(raw)) is not None:
        raw = m.group(1)
    if raw.strip().lower() in ignore:
        return None
    if (emotion := emotion_of(raw)) is None:
        raise ValueError(f"{name}, {where}: '{raw.strip()}' is not one of the emotions {', '.join(EMOTIONS)} (or a "
                         "usual synonym such as anger, joy, sadness, fear, surprise); skip it with --ignore-labels.")
    return emotion


def _number(text: str, name: str, where: str, column: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name}, {where}: the {column} '{text}' is not a number of seconds.") from None


def read_csv_labels(source: Path, text: str, base: Path, ignore: frozenset[str] = frozenset()) -> list[LabelledFile]:
    """The rows of a labels CSV (whole recordings) or a segment CSV (with ``start`` and ``end``; a row with both
    empty stands for its whole recording)."""
    reader = csv.DictReader(io.StringIO(text))
    cols = {c.strip().lower() for c in reader.fieldnames or []}
    if not {"path", "label"} <= cols:
        raise ValueError(f"{source.name}: a labels file needs the columns 'path' and 'label' (optionally "
                         f"'start' and 'end' in seconds, and 'speaker'); it has {', '.join(sorted(cols)) or 'none'}.")
    segments = {"start", "end"} <= cols
    if not segments and ({"start", "end"} & cols):
        raise ValueError(f"{source.name}: a segment file needs both columns 'start' and 'end'.")
    out = []
    for i, row in enumerate(reader, start=2):
        row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        where = f"line {i}"
        if not row["path"]:
            raise ValueError(f"{source.name}, {where}: the path is empty.")
        if (label := _label(row["label"], source.name, where, ignore)) is None:
            continue
        p = Path(row["path"])
        start = end = None
        if segments and (row["start"] or row["end"]):  # both empty: the whole recording
            start = _number(row["start"], source.name, where, "start")
            end = _number(row["end"], source.name, where, "end")
        out.append(LabelledFile(p if p.is_absolute() else base / p, label, row.get("speaker") or None, start, end,
                                where))
    if not out:
        raise ValueError(f"{source.name}: the labels file lists no recordings.")
    return check_segments(out, source.name)


def _file_url_path(url: str, base: Path) -> Path:
    """A media descriptor's URL (``file:///…``, ``./clip.mp4`` or a plain path) as a path."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    p = Path(url) if (base / url).exists() or Path(url).is_absolute() else Path(urllib.parse.unquote(url))
    return p if p.is_absolute() else base / p


def elan_media(eaf: Eaf, source: Path) -> Path:
    """The recording an ELAN file names: its relative media URL first, then its absolute one."""
    descriptors = eaf.media_descriptors
    if not descriptors:
        raise ValueError(f"{source.name}: the file names no recording; give it with --media REC.")
    candidates = [_file_url_path(d["RELATIVE_MEDIA_URL"], source.parent) for d in descriptors
                  if d.get("RELATIVE_MEDIA_URL")]
    candidates += [_file_url_path(d["MEDIA_URL"], source.parent) for d in descriptors if d.get("MEDIA_URL")]
    for p in candidates:
        if p.is_file():
            return p.resolve()
    named = descriptors[0].get("RELATIVE_MEDIA_URL") or descriptors[0].get("MEDIA_URL")
    raise ValueError(f"{source.name}: the recording it names ({named}) was not found; give it with --media REC.")


def choose_tier(names: list[str], tier: str | None, source: Path) -> str:
    """The coded tier: the one asked for, or the only one; a clear error listing the tiers otherwise."""
    if not names:
        raise ValueError(f"{source.name}: the file has no tiers.")
    listed = ", ".join(f"'{n}'" for n in names)
    if tier is None:
        if len(names) > 1:
            raise ValueError(f"{source.name} has {len(names)} tiers ({listed}): choose the coded one with --tier NAME.")
        return names[0]
    if tier not in names:
        raise ValueError(f"{source.name}: there is no tier '{tier}'; its tiers are {listed}.")
    return tier


def read_elan(source: Path, tier: str | None = None, media: Path | None = None,
              ignore: frozenset[str] = frozenset()) -> list[LabelledFile]:
    """The annotations of one tier of an ELAN file as coded segments of its recording."""
    try:
        eaf = Eaf(str(source), suppress_version_warning=True)
    except Exception:  # pympi raises bare Exceptions, KeyErrors and ParseErrors for damaged files
        raise ValueError(f"{source.name}: not a readable ELAN file (it may be truncated, or not ELAN's XML).") from None
    name = choose_tier(list(eaf.get_tier_names()), tier, source)
    recording = media if media is not None else elan_media(eaf, source)
    participant = (eaf.get_parameters_for_tier(name) or {}).get("PARTICIPANT") or None
    spans: list[tuple[float, float, str, str]] = []
    aligned, refs = eaf.tiers[name][0], eaf.tiers[name][1]
    for aid, (ts1, ts2, value, _) in aligned.items():
        t1, t2 = eaf.timeslots.get(ts1), eaf.timeslots.get(ts2)
        if t1 is None or t2 is None:
            raise ValueError(f"{source.name}, annotation {aid} of tier '{name}': it has no time; align it in ELAN.")
        spans.append((t1 / 1000, t2 / 1000, value or "", f"annotation {aid}"))
    if refs:
        try:
            for k, (t1, t2, value, _) in enumerate(eaf.get_ref_annotation_data_for_tier(name), start=1):
                spans.append((t1 / 1000, t2 / 1000, value or "", f"annotation {k} of tier '{name}'"))
        except (KeyError, TypeError):
            raise ValueError(f"{source.name}: tier '{name}' refers to annotations that are missing or have no time."
                             ) from None
    return _segments(spans, recording, participant, source.name, ignore)


def read_textgrid(source: Path, tier: str | None = None, media: Path | None = None,
                  ignore: frozenset[str] = frozenset()) -> list[LabelledFile]:
    """The non-empty intervals of one interval tier of a Praat TextGrid as coded segments of ``media``."""
    if media is None:
        raise ValueError(f"{source.name}: a TextGrid does not name its recording; give it with --media REC.")
    try:
        data = source.read_bytes()
        codec = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
        grid = TextGrid(xmax=1)
        grid.from_file(io.BytesIO(data), codec=codec)
    except Exception:  # pympi raises StopIteration, AttributeError, UnicodeDecodeError… for damaged files
        raise ValueError(f"{source.name}: not a readable Praat TextGrid (it may be truncated or in another format)."
                         ) from None
    name = choose_tier([t.name for t in grid.get_tiers()], tier, source)
    chosen = grid.get_tier(name)
    if chosen.tier_type != "IntervalTier":
        raise ValueError(f"{source.name}: tier '{name}' is a point tier; coded segments need an interval tier.")
    spans = [(float(s), float(e), text, f"interval {k} of tier '{name}'")
             for k, (s, e, text) in enumerate(chosen.get_intervals(sort=True), start=1) if text.strip()]
    return _segments(spans, media, None, source.name, ignore)


def _segments(spans: Iterable[tuple[float, float, str, str]], media: Path, speaker: str | None, name: str,
              ignore: frozenset[str]) -> list[LabelledFile]:
    out = []
    for s, e, value, where in sorted(spans):
        if (label := _label(value, name, f"{where} ({s:g}-{e:g} s)", ignore)) is not None:
            out.append(LabelledFile(media, label, speaker, s, e, where))
    if not out:
        raise ValueError(f"{name}: the coded tier holds no segment to score.")
    return check_segments(out, name)


def check_segments(items: list[LabelledFile], name: str) -> list[LabelledFile]:
    """``items`` when every segment has a positive length and none overlaps another of the same recording
    and speaker (one code per moment); ValueError naming both otherwise."""
    last: dict[tuple[Path, str | None], LabelledFile] = {}
    for it in sorted((i for i in items if i.is_segment), key=lambda i: (str(i.path), i.speaker or "", i.start)):
        assert it.start is not None and it.end is not None
        if it.start < 0 or it.end <= it.start:
            raise ValueError(f"{name}, {it.where}: the segment {it.start:g}-{it.end:g} s has no length (or starts "
                             "before 0).")
        key = (it.path, it.speaker)
        prev = last.get(key)
        if prev is not None and prev.end is not None and it.start < prev.end - OVERLAP_TOLERANCE_S:
            raise ValueError(f"{name}: {prev.where} ({prev.start:g}-{prev.end:g} s) and {it.where} "
                             f"({it.start:g}-{it.end:g} s) overlap; a tier carries one code at a time.")
        last[key] = it
    return items


def check_media(items: list[LabelledFile], name: str, limits: Limits = Limits()) -> None:
    """Every recording a segment names exists and is long enough for it (ValueError: one line)."""
    durations: dict[Path, float] = {}
    for it in items:
        if not it.is_segment:
            continue
        if it.path not in durations:
            try:
                info = probe(it.path, limits)
            except MediaError as e:
                raise ValueError(f"{name}: {e}") from None
            if info.kind == "image":
                raise ValueError(f"{name}: {it.path.name} is a still image; coded segments need a video or audio "
                                 "recording.")
            durations[it.path] = float(info.duration or 0.0)
        check_time(it, durations[it.path], name)


def check_time(it: LabelledFile, duration: float, name: str) -> None:
    """ValueError when the segment ``it`` ends past a recording of ``duration`` seconds."""
    if it.end is not None and it.end > duration + TIME_TOLERANCE_S:
        raise ValueError(f"{name}, {it.where}: the segment {it.start:g}-{it.end:g} s lies beyond the end of "
                         f"{it.path.name} ({duration:.3f} s).")


def read_labels(source: str | Path, text: str | None = None, base: Path | None = None, tier: str | None = None,
                media: str | Path | None = None, ignore: Iterable[str] = ()) -> list[LabelledFile]:
    """The labelled items of a coding file, by its suffix: CSV (``text`` when given, else the file), ELAN
    (.eaf) or Praat (.TextGrid). ValueError with the line or annotation at fault."""
    source = Path(source)
    ignored = frozenset(x.lower() for x in ignore)
    recording = None if media is None else Path(media)
    suffix = source.suffix.lower()
    if suffix in (".eaf", ".textgrid"):
        if not source.is_file():
            raise ValueError(f"{source.name}: the coding file could not be read.")
        reader = read_elan if suffix == ".eaf" else read_textgrid
        return reader(source, tier, recording, ignored)
    try:
        text = source.read_text(encoding="utf-8-sig") if text is None else text.lstrip("\ufeff")
    except (OSError, UnicodeDecodeError):
        raise ValueError(f"{source.name}: the labels file could not be read.") from None
    if recording is not None or tier is not None:
        raise ValueError(f"{source.name}: --media and --tier are for ELAN and Praat files; a CSV names its recordings "
                         "in its 'path' column.")
    return read_csv_labels(source, text, base or source.parent, ignored)


def coding_tiers(source: Path) -> list[str]:
    """The tier names of an ELAN or Praat file (empty for a CSV or an unreadable file): what to choose from."""
    try:
        if source.suffix.lower() == ".eaf":
            return list(Eaf(str(source), suppress_version_warning=True).get_tier_names())
        if source.suffix.lower() == ".textgrid":
            data = source.read_bytes()
            grid = TextGrid(xmax=1)
            grid.from_file(io.BytesIO(data), codec="utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig")
            return [t.name for t in grid.get_tiers()]
    except Exception:  # an unreadable file: read_labels says why
        return []
    return []


def read_coding_upload(name: str, data: bytes, recording: str, duration: float, tier: str | None = None,
                       ignore: Iterable[str] = (), tmp_dir: str | None = None) -> tuple[list[LabelledFile], list[str]]:
    """A coding file uploaded for one recording (named ``recording``, ``duration`` s long): its segments and
    the tiers it offers. The bytes are held in a temporary file only while they are read (pympi reads
    paths), in ``tmp_dir`` (memory-backed storage in the app). A CSV's rows for other recordings are left
    out (its paths are matched by file name; a CSV about one recording needs no match). No segments when
    the file has several tiers and ``tier`` is None: the caller asks which. ValueError: one line."""
    suffix = Path(name).suffix.lower()
    if suffix not in CODING_SUFFIXES:
        raise ValueError(f"{name}: a coding file is an ELAN .eaf, a Praat .TextGrid or a segment CSV.")
    media = Path(recording)
    with tempfile.TemporaryDirectory(prefix="emotion-coding-", dir=tmp_dir) as d:
        path = Path(d) / (re.sub(r"[^\w.\- ]", "_", Path(name).name)[-120:] or f"coding{suffix}")
        path.write_bytes(data)
        tiers = coding_tiers(path)
        if suffix == ".csv":
            items = read_labels(path, data.decode("utf-8-sig", errors="replace"), base=Path(d), ignore=ignore)
            paths = {it.path.name for it in items}
            if len(paths) > 1:
                items = [it for it in items if it.path.name == media.name]
            if not items:
                raise ValueError(f"{name}: no row is about {media.name} (it names {', '.join(sorted(paths))}).")
            if not all(it.is_segment for it in items):
                raise ValueError(f"{name}: a coding of one recording needs the columns start and end (seconds).")
        elif (tier is None or tier not in tiers) and len(tiers) > 1:
            return [], tiers  # the caller lets the user choose the coded tier
        else:
            items = read_labels(path, tier=tier, media=media, ignore=ignore)
    items = [LabelledFile(media, it.label, it.speaker, it.start, it.end, it.where) for it in items]
    for it in items:
        check_time(it, duration, name)
    return items, tiers
