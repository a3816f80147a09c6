"""A group's own labelled recordings: how well the model reads them, and a profile fitted on them.

The labels come from a coding file (``coding.read_labels``): a ``LABELS.csv`` with one label per
recording, a segment CSV, or an ELAN or Praat file with one label per coded stretch. ``evaluate``
analyses every recording once with the same code as ``analyze`` and scores the chosen modality per
item (a whole recording, or a segment read from that one analysis, ``AnalysisResult.reading_between``),
with predictions taken among the emotions present in the labels; ``adapt`` fits a
``profile.VoiceProfile`` on the voices of the same items.
"""

from __future__ import annotations

import datetime as _dt
import html
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .analysis import AnalysisResult, Analyzer, overlap_weights
from .baseline import window_features
from .coding import CODING_SUFFIXES, LabelledFile, check_media, check_time, read_labels
from .constants import EMOTIONS, SAMPLE_RATE
from .errors import MediaError
from .inference import pool_voice
from .media import load_audio, probe
from .metrics import cohen_kappa, confusion, ece
from .profile import VoiceProfile, fit_profile, model_id
from .voice_ensemble import VoiceEnsemble

MODALITIES = ("fused", "voice", "face")
SEGMENT_VOICE = ("span", "windows")
"""How a coded segment's voice is read (the first is the default): ``span``, from exactly the segment's audio,
read as a clip of that length would be; ``windows``, from the analysis's 4-s windows that overlap it,
weighted by overlap (what the timeline shows; a segment shorter than a window also hears its neighbours,
which on one-word TurEV-DB codes turned 24 of 24 right into 5: benchmarks/bench_coding.py)."""
DEFAULT_MODALITY = {"audio": "voice", "video": "fused", "image": "face"}
"""What is scored when no modality is chosen: each file by what it holds."""
Progress = Callable[[int, int, str], None]


def stage_uploads(files: list[tuple[str, bytes]], folder: Path, tier: str | None = None) -> list[LabelledFile]:
    """Write uploaded files into ``folder`` (a zip is unpacked there) and read the coding among them.

    Names are reduced to safe relative paths (no ``..``, no absolute paths). The coding is one CSV file
    (``LABELS.csv`` preferred; whole recordings or segments) and/or ELAN and Praat files, each beside its
    recording (a TextGrid's has the same name; an ELAN file's is the one it names, or has its name);
    ``tier`` picks their coded tier. ValueError with a human message otherwise."""
    import zipfile

    def safe(name: str) -> Path | None:
        parts = [p for p in Path(name.replace("\\", "/")).parts if p not in ("", ".", "..", "/")]
        return Path(*parts) if parts and not parts[-1].startswith("__MACOSX") else None

    for name, data in files:
        if name.lower().endswith(".zip"):
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as z:
                    for member in z.infolist():
                        rel = safe(member.filename)
                        if member.is_dir() or rel is None or "__MACOSX" in rel.parts:
                            continue
                        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                        (folder / rel).write_bytes(z.read(member))
            except zipfile.BadZipFile:
                raise ValueError(f"{name}: this zip file could not be opened.") from None
        elif (rel := safe(Path(name).name)) is not None:
            (folder / rel).write_bytes(data)
    csvs = sorted(folder.rglob("*.csv"), key=lambda p: (p.name.lower() != "labels.csv", len(p.parts), str(p)))
    codings = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".eaf", ".textgrid"))
    if not csvs and not codings:
        raise ValueError("no labels file: add a LABELS.csv with the columns path,label (or path,start,end,label for "
                         "segments; optionally speaker), or ELAN (.eaf) or Praat (.TextGrid) files with their recordings.")
    labels_files = [p for p in csvs if p.name.lower() == "labels.csv"]
    if len(labels_files) > 1 or (len(csvs) > 1 and not labels_files):
        raise ValueError("several CSV files: name the labels file LABELS.csv.")
    items = read_labels(csvs[0]) if csvs else []
    for c in codings:
        beside = [p for p in c.parent.glob(f"{c.stem}.*") if p.suffix.lower() not in (*CODING_SUFFIXES, ".zip")]
        if c.suffix.lower() == ".textgrid" and not beside:
            raise ValueError(f"{c.name}: upload its recording with it, named {c.stem} (e.g. {c.stem}.wav).")
        items += read_labels(c, tier=tier, media=beside[0] if beside else None)
    root = folder.resolve()
    for it in items:  # an uploaded labels file names only uploaded files, never others on this machine
        if not it.path.resolve().is_relative_to(root):
            raise ValueError(f"'{it.path.name}' lies outside the upload; the recordings a coding file names must be "
                             "uploaded with it (paths relative to it).")
    check_media(items, "your coding")
    return items


@dataclass
class Scored:
    """One file's outcome: the probabilities of the scored modality, or why there are none."""

    item: LabelledFile
    modality: str | None = None
    probs: np.ndarray | None = None
    reason: str | None = None


@dataclass
class EvaluationReport:
    items: list[Scored]
    profile: dict[str, Any] | None = None
    chosen_modality: str | None = None

    @property
    def scored(self) -> list[Scored]:
        return [s for s in self.items if s.probs is not None]

    @property
    def classes(self) -> list[str]:
        present = {s.item.label for s in self.items}
        return [e for e in EMOTIONS if e in present]

    def predictions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(true index, predicted index, probabilities renormalised) in ``classes`` order, scored files only."""
        idx = [EMOTIONS.index(e) for e in self.classes]
        p = np.array([s.probs[idx] for s in self.scored]).reshape(-1, len(idx))
        p = p / np.clip(p.sum(1, keepdims=True), 1e-12, None)
        y = np.array([self.classes.index(s.item.label) for s in self.scored], int)
        return y, p.argmax(1) if len(p) else np.zeros(0, int), p

    def to_dict(self) -> dict[str, Any]:
        """The JSON that ``evaluate data`` prints (see README)."""
        y, pred, p = self.predictions()
        classes = self.classes
        cm = confusion(y, pred, len(classes))
        per_class = {}
        for i, c in enumerate(classes):
            per_class[c] = {"recall": float(cm[i, i] / cm[i].sum()) if cm[i].sum() else None,
                            "precision": float(cm[i, i] / cm[:, i].sum()) if cm[:, i].sum() else None,
                            "n": int(cm[i].sum())}
        recalls = [v["recall"] for v in per_class.values() if v["recall"] is not None]
        out: dict[str, Any] = {
            "n": int(len(y)), "classes": classes,
            "modality": self.chosen_modality or "by file (voice for audio, fused for video, face for images)",
            "accuracy": float((pred == y).mean()) if len(y) else None,
            "uar": float(np.mean(recalls)) if recalls else None, "kappa": cohen_kappa(cm),
            "per_class": per_class, "confusion": cm.tolist(), "ece": ece(y, p) if len(y) else None,
            "failed": [{"path": str(s.item.path), "reason": s.reason} for s in self.items if s.probs is None],
            "profile": self.profile}
        speakers = sorted({s.item.speaker for s in self.scored if s.item.speaker})
        if speakers:
            out["per_speaker"] = {}
            for spk in speakers:
                m = np.array([s.item.speaker == spk for s in self.scored])
                out["per_speaker"][spk] = {"n": int(m.sum()), "accuracy": float((pred[m] == y[m]).mean())}
        return out

    def rows(self) -> list[dict[str, Any]]:
        """Per-item predictions (the CSV of ``--out``): one row per file, or per coded segment."""
        classes = self.classes
        idx = [EMOTIONS.index(e) for e in classes]
        segments = any(s.item.is_segment for s in self.items)
        out = []
        for s in self.items:
            row: dict[str, Any] = {"path": str(s.item.path), "speaker": s.item.speaker or ""}
            if segments:
                row |= {"start": s.item.start, "end": s.item.end, "where": s.item.where or ""}
            row |= {"label": s.item.label, "modality": s.modality or "", "predicted": "", "error": s.reason or ""}
            if s.probs is not None:
                q = s.probs[idx] / max(float(s.probs[idx].sum()), 1e-12)
                row["predicted"] = classes[int(q.argmax())]
                row |= {e: round(float(v), 5) for e, v in zip(EMOTIONS, s.probs, strict=True)}
            out.append(row)
        return out


def modality_probs(res: AnalysisResult, modality: str) -> np.ndarray | None:
    """The probabilities of one modality of an analysis (None when the file does not hold it)."""
    if modality == "fused":
        return res.probs
    branch = res.voice if modality == "voice" else res.face
    return None if branch is None else branch.probs


def score_item(res: AnalysisResult, it: LabelledFile, modality: str | None, analyzer: Analyzer | None = None
               ) -> Scored:
    """One item scored from the analysis of its recording: the whole recording, or its coded span (its voice
    read from exactly the span's audio when ``analyzer`` is given: ``SEGMENT_VOICE`` 'span')."""
    if res.error:
        return Scored(it, reason=res.error)
    m = modality or DEFAULT_MODALITY[res.kind or "video"]
    name = Path(it.path).name
    if not it.is_segment:
        p = modality_probs(res, m)
        why = None if p is not None else f"{name}: no {m} reading ({'; '.join(res.warnings) or 'nothing found'})"
        return Scored(it, m, p, why)
    assert it.start is not None and it.end is not None
    if res.kind == "image":
        return Scored(it, m, reason=f"{name}: a still image has no time line for the segment {it.start:g}-{it.end:g} s")
    try:
        check_time(it, float(res.duration or 0.0), name)
    except ValueError as e:
        return Scored(it, m, reason=str(e))
    voice = True if analyzer is None or m == "face" else analyzer.span_voice(res, it.start, it.end)
    r = res.reading_between(it.start, it.end, voice)
    p = {"fused": r.probs, "face": r.face, "voice": r.voice}[m]
    why = None if p is not None else f"{name}, {it.where}: no {m} reading in {it.start:g}-{it.end:g} s"
    return Scored(it, m, p, why)


def by_recording(items: list[LabelledFile]) -> dict[Path, list[int]]:
    """The items' indices per recording, in the order the recordings first appear: each is analysed once."""
    groups: dict[Path, list[int]] = {}
    for i, it in enumerate(items):
        groups.setdefault(it.path, []).append(i)
    return groups


def evaluate_result(res: AnalysisResult, items: list[LabelledFile], modality: str | None = None,
                    profile: dict[str, Any] | None = None, span_reader: Analyzer | None = None) -> EvaluationReport:
    """The coded items of one analysed recording, scored (the Analyse page's coding row); with
    ``span_reader`` each segment's voice is read from its own audio (``res`` must keep its audio)."""
    return EvaluationReport([score_item(res, it, modality, span_reader) for it in items], profile, modality)


def evaluate_files(analyzer: Analyzer, items: list[LabelledFile], modality: str | None = None,
                   progress: Progress | None = None, segment_voice: str = SEGMENT_VOICE[0]) -> EvaluationReport:
    """Analyse every labelled recording once, as ``analyze`` does, and score each item's chosen modality
    (a segment's voice as ``segment_voice`` says, ``SEGMENT_VOICE``)."""
    groups = by_recording(items)
    scored: list[Scored | None] = [None] * len(items)
    span = segment_voice == "span"
    for k, (path, idx) in enumerate(groups.items()):
        if progress is not None:
            progress(k, len(groups), path.name)
        res = analyzer.analyze(path, keep_audio=span and any(items[i].is_segment for i in idx))
        for i in idx:
            scored[i] = score_item(res, items[i], modality, analyzer if span else None)
        res.audio = None
    if progress is not None:
        progress(len(groups), len(groups), "done")
    return EvaluationReport([s for s in scored if s is not None],
                            None if analyzer.profile is None else analyzer.profile.to_dict(), modality)


def voice_examples(analyzer: Analyzer, items: Iterable[LabelledFile], progress: Progress | None = None,
                   segment_voice: str = SEGMENT_VOICE[0]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Scored]]:
    """For each item with a voice: the shipped model's log-probabilities (as ``analyze`` pools them over
    the recording or the segment, ``segment_voice`` as in ``evaluate_files``), the frozen encoder's
    standardised features over the same windows with the same weights, and the label index. Each
    recording's voice is read once (and each segment's again with 'span')."""
    items = list(items)
    if not isinstance(analyzer.models.voice.model, VoiceEnsemble):
        raise ValueError("profiles need the shipped voice ensemble (weights/voice.pt and weights/voice_probe.pt)")
    probe_net = analyzer.models.voice.model.probe
    head = probe_net.head
    logp, feats, labels, failed = [], [], [], []

    def features(audio: np.ndarray, windows: list) -> np.ndarray:
        return window_features(probe_net, audio, [(w.start, w.end, w.activity) for w in windows])

    def example(it: LabelledFile, f: np.ndarray, windows: list, weights: np.ndarray) -> None:
        mean = torch.from_numpy(np.average(f, axis=0, weights=weights)[None]).to(head.mean)
        x = probe_net.head_input(mean).cpu().numpy()[0]
        feats.append((x - head.mean.cpu().numpy()) / head.scale.cpu().numpy())
        # the model's reading at its fixed temperature, as a profile applies it (not the recording's own)
        logp.append(np.log(np.clip(pool_voice(windows, analyzer.voice_model.temperature, weights), 1e-12, 1)))
        labels.append(EMOTIONS.index(it.label))

    groups = by_recording(items)
    for k, (path, idx) in enumerate(groups.items()):
        if progress is not None:
            progress(k, len(groups), path.name)
        try:
            info = probe(path, analyzer.limits)
            audio = load_audio(info)
        except MediaError as e:
            failed += [Scored(items[i], reason=str(e)) for i in idx]
            continue
        warnings: list[str] = []
        branch = analyzer.voice_branch(audio, warnings, info.kind)
        if branch is None:
            failed += [Scored(items[i], reason=f"{path.name}: {'; '.join(warnings) or 'no voice'}") for i in idx]
            continue
        whole: np.ndarray | None = None
        for i in idx:
            it = items[i]
            if it.is_segment and segment_voice == "span":
                part = audio[int(round(it.start * SAMPLE_RATE)): int(round(it.end * SAMPLE_RATE))]
                own = analyzer.voice_branch(part, [], info.kind)
                if own is None:
                    failed.append(Scored(it, reason=f"{path.name}, {it.where}: no voice in {it.start:g}-{it.end:g} s"))
                else:
                    example(it, features(part, own.windows), own.windows, np.array([v.activity for v in own.windows]))
                continue
            ws = branch.windows
            w = np.array([v.activity for v in ws]) if not it.is_segment else overlap_weights(ws, it.start, it.end)
            if w.sum() <= 0:
                failed.append(Scored(it, reason=f"{path.name}, {it.where}: no voice in {it.start:g}-{it.end:g} s"))
                continue
            if whole is None:  # the recording's window features, once
                whole = features(audio, ws)
            example(it, whole, ws, w)
    if progress is not None:
        progress(len(groups), len(groups), "done")
    return (np.array(logp).reshape(-1, len(EMOTIONS)), np.array(feats), np.array(labels, int), failed)


def adapt(analyzer: Analyzer, items: list[LabelledFile], name: str, labels_file: str,
          progress: Progress | None = None, segment_voice: str = SEGMENT_VOICE[0]) -> tuple[VoiceProfile, list[Scored]]:
    """A voice profile fitted on the labelled files or segments (with the shipped model: any profile is ignored)."""
    shipped = analyzer.with_profile(None)
    logp, z, labels, failed = voice_examples(shipped, items, progress, segment_voice)
    if len(labels) == 0:
        raise ValueError("none of the files has a voice to learn from")
    used = [it for it in items if all(it is not f.item for f in failed)]
    meta = {"name": name, "labels_file": labels_file, "speakers": len({it.speaker for it in used if it.speaker}) or None,
            "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "modality": "voice"}
    return fit_profile(logp, z, labels, model_id(analyzer.models.voice.meta), meta), failed


def report_html(report: dict[str, Any], title: str, unit: str = "files") -> str:
    """A self-contained HTML page: the headline figures, per-class table, confusion matrix, failures."""
    e = html.escape
    classes = report["classes"]

    def pct(v: float | None) -> str:
        return "–" if v is None else f"{100 * v:.1f} %"

    cm = np.array(report["confusion"]) if classes else np.zeros((0, 0))
    top = max(int(cm.max()) if cm.size else 1, 1)
    cells = "".join(
        f"<tr><th>{e(c)}</th>" + "".join(
            f'<td style="background:rgba(31,119,180,{v / top:.2f})">{v}</td>' for v in cm[i]) + "</tr>"
        for i, c in enumerate(classes))
    per = "".join(f"<tr><td>{e(c)}</td><td>{v['n']}</td><td>{pct(v['recall'])}</td><td>{pct(v['precision'])}</td></tr>"
                  for c, v in report["per_class"].items())
    failed = "".join(f"<li>{e(f['reason'] or f['path'])}</li>" for f in report["failed"]) or "<li>none</li>"
    prof = report.get("profile")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{e(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:60em}}td,th{{padding:.3em .6em;text-align:center}}
table{{border-collapse:collapse}}</style></head><body>
<h1>{e(title)}</h1>
<p>{report['n']} {e(unit)} scored ({e(str(report['modality']))}); predictions among {e(', '.join(classes))}.
{'Profile: ' + e(prof['name']) if prof else 'No profile: the shipped model.'}</p>
<p><b>Accuracy {pct(report['accuracy'])}</b> · unweighted average recall {pct(report['uar'])} ·
Cohen's kappa {'–' if report.get('kappa') is None else f"{report['kappa']:.2f}"} ·
calibration error {'–' if report['ece'] is None else f"{report['ece']:.3f}"}</p>
<h2>Per emotion</h2><table><tr><th>emotion</th><th>files</th><th>recall</th><th>precision</th></tr>{per}</table>
<h2>Confusion matrix</h2><p>Rows: the label; columns: the prediction.</p>
<table><tr><th></th>{''.join(f'<th>{e(c)}</th>' for c in classes)}</tr>{cells}</table>
<h2>Files that could not be scored</h2><ul>{failed}</ul></body></html>"""


def write_outputs(report: EvaluationReport, out: Path, title: str = "Evaluation on labelled recordings") -> None:
    """``predictions.csv`` (one row per file) and ``report.html`` in ``out``."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(report.rows()).to_csv(out / "predictions.csv", index=False)
    unit = "coded segments" if any(s.item.is_segment for s in report.items) else "files"
    (out / "report.html").write_text(report_html(report.to_dict(), title, unit), encoding="utf-8")
