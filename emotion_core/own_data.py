"""A group's own labelled recordings: how well the model reads them, and a profile fitted on them.

``LABELS.csv`` has columns ``path,label`` and optionally ``speaker``; paths are relative to the
CSV's folder or absolute, labels are emotion names. ``evaluate`` analyses every file with the same
code as ``analyze`` and scores the chosen modality with predictions taken among the emotions present
in the labels; ``adapt`` fits a ``profile.VoiceProfile`` on the voices.
"""

from __future__ import annotations

import csv
import datetime as _dt
import html
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .analysis import AnalysisResult, Analyzer
from .baseline import recording_features
from .constants import EMOTIONS
from .errors import MediaError
from .inference import pool_voice
from .media import load_audio, probe
from .metrics import confusion, ece
from .profile import VoiceProfile, fit_profile, model_id
from .voice_ensemble import VoiceEnsemble

MODALITIES = ("fused", "voice", "face")
DEFAULT_MODALITY = {"audio": "voice", "video": "fused", "image": "face"}
"""What is scored when no modality is chosen: each file by what it holds."""
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class LabelledFile:
    path: Path
    label: str
    speaker: str | None = None


def read_labels(source: str | Path, text: str | None = None, base: Path | None = None) -> list[LabelledFile]:
    """The rows of a labels CSV (``text`` when given, else the file ``source``); ValueError with the
    line at fault for a missing column, an unknown emotion or an empty file."""
    source = Path(source)
    base = base or source.parent
    try:
        text = source.read_text(encoding="utf-8-sig") if text is None else text.lstrip("\ufeff")
    except OSError:
        raise ValueError(f"{source.name}: the labels file could not be read.") from None
    reader = csv.DictReader(io.StringIO(text))
    cols = {c.strip().lower() for c in reader.fieldnames or []}
    if not {"path", "label"} <= cols:
        raise ValueError(f"{source.name}: a labels file needs the columns 'path' and 'label' (optionally "
                         f"'speaker'); it has {', '.join(sorted(cols)) or 'none'}.")
    out = []
    for i, row in enumerate(reader, start=2):
        row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        label = row["label"].lower()
        if label not in EMOTIONS:
            raise ValueError(f"{source.name}, line {i}: '{row['label']}' is not one of the emotions "
                             f"{', '.join(EMOTIONS)}.")
        if not row["path"]:
            raise ValueError(f"{source.name}, line {i}: the path is empty.")
        p = Path(row["path"])
        out.append(LabelledFile(p if p.is_absolute() else base / p, label, row.get("speaker") or None))
    if not out:
        raise ValueError(f"{source.name}: the labels file lists no recordings.")
    return out


def stage_uploads(files: list[tuple[str, bytes]], folder: Path) -> list[LabelledFile]:
    """Write uploaded files into ``folder`` (a zip is unpacked there) and read the labels file among them.

    Names are reduced to safe relative paths (no ``..``, no absolute paths); exactly one CSV file
    (``LABELS.csv`` preferred) must be present. ValueError with a human message otherwise."""
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
    if not csvs:
        raise ValueError("no labels file: add a LABELS.csv with the columns path,label (and optionally speaker).")
    labels_files = [p for p in csvs if p.name.lower() == "labels.csv"]
    if len(labels_files) > 1 or (len(csvs) > 1 and not labels_files):
        raise ValueError("several CSV files: name the labels file LABELS.csv.")
    items = read_labels(csvs[0])
    root = folder.resolve()
    for it in items:  # an uploaded labels file names only uploaded files, never others on this machine
        if not it.path.resolve().is_relative_to(root):
            raise ValueError(f"{csvs[0].name}: '{it.path.name}' lies outside the upload; paths in an uploaded labels "
                             "file must be relative to it.")
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
            "uar": float(np.mean(recalls)) if recalls else None,
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
        """Per-file predictions (the CSV of ``--out``)."""
        classes = self.classes
        idx = [EMOTIONS.index(e) for e in classes]
        out = []
        for s in self.items:
            row = {"path": str(s.item.path), "speaker": s.item.speaker or "", "label": s.item.label,
                   "modality": s.modality or "", "predicted": "", "error": s.reason or ""}
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


def evaluate_files(analyzer: Analyzer, items: list[LabelledFile], modality: str | None = None,
                   progress: Progress | None = None) -> EvaluationReport:
    """Analyse every labelled file as ``analyze`` does and keep the chosen modality's probabilities."""
    scored = []
    for i, it in enumerate(items):
        if progress is not None:
            progress(i, len(items), it.path.name)
        res = analyzer.analyze(it.path)
        if res.error:
            scored.append(Scored(it, reason=res.error))
            continue
        m = modality or DEFAULT_MODALITY[res.kind or "video"]
        p = modality_probs(res, m)
        why = None if p is not None else f"{it.path.name}: no {m} reading ({'; '.join(res.warnings) or 'nothing found'})"
        scored.append(Scored(it, m, p, why))
    if progress is not None:
        progress(len(items), len(items), "done")
    return EvaluationReport(scored, None if analyzer.profile is None else analyzer.profile.to_dict(), modality)


def voice_examples(analyzer: Analyzer, items: Iterable[LabelledFile], progress: Progress | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Scored]]:
    """For each file with a voice: the shipped model's clip log-probabilities (as ``analyze`` pools
    them), the frozen encoder's standardised features over the same windows, and the label index."""
    items = list(items)
    if not isinstance(analyzer.models.voice.model, VoiceEnsemble):
        raise ValueError("profiles need the shipped voice ensemble (weights/voice.pt and weights/voice_probe.pt)")
    probe_net = analyzer.models.voice.model.probe
    logp, feats, labels, failed = [], [], [], []
    for i, it in enumerate(items):
        if progress is not None:
            progress(i, len(items), it.path.name)
        try:
            info = probe(it.path, analyzer.limits)
            audio = load_audio(info)
        except MediaError as e:
            failed.append(Scored(it, reason=str(e)))
            continue
        warnings: list[str] = []
        branch = analyzer.voice_branch(audio, warnings, info.kind)
        if branch is None:
            failed.append(Scored(it, reason=f"{it.path.name}: {'; '.join(warnings) or 'no voice'}"))
            continue
        f = recording_features(probe_net, audio, [(w.start, w.end, w.activity) for w in branch.windows])
        head = probe_net.head
        x = probe_net.head_input(torch.from_numpy(f).to(head.mean)).cpu().numpy()
        feats.append((x - head.mean.cpu().numpy()) / head.scale.cpu().numpy())
        # the model's reading at its fixed temperature, as a profile applies it (not the recording's own)
        logp.append(np.log(np.clip(pool_voice(branch.windows, analyzer.voice_model.temperature), 1e-12, 1)))
        labels.append(EMOTIONS.index(it.label))
    if progress is not None:
        progress(len(items), len(items), "done")
    return (np.array(logp).reshape(-1, len(EMOTIONS)), np.array(feats), np.array(labels, int), failed)


def adapt(analyzer: Analyzer, items: list[LabelledFile], name: str, labels_file: str,
          progress: Progress | None = None) -> tuple[VoiceProfile, list[Scored]]:
    """A voice profile fitted on the labelled files (with the shipped model: any profile is ignored)."""
    shipped = analyzer.with_profile(None)
    logp, z, labels, failed = voice_examples(shipped, items, progress)
    if len(labels) == 0:
        raise ValueError("none of the files has a voice to learn from")
    used = [it for it in items if all(it is not f.item for f in failed)]
    meta = {"name": name, "labels_file": labels_file, "speakers": len({it.speaker for it in used if it.speaker}) or None,
            "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "modality": "voice"}
    return fit_profile(logp, z, labels, model_id(analyzer.models.voice.meta), meta), failed


def report_html(report: dict[str, Any], title: str) -> str:
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
<p>{report['n']} files scored ({e(str(report['modality']))}); predictions among {e(', '.join(classes))}.
{'Profile: ' + e(prof['name']) if prof else 'No profile: the shipped model.'}</p>
<p><b>Accuracy {pct(report['accuracy'])}</b> · unweighted average recall {pct(report['uar'])} ·
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
    (out / "report.html").write_text(report_html(report.to_dict(), title), encoding="utf-8")
