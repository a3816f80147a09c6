"""The 'Your data' page's work: labelled uploads staged in memory, evaluated, and a profile fitted."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emotion_core.own_data import adapt, evaluate_files, report_html, stage_uploads
from emotion_core.profile import VoiceProfile
from pages.common import Upload, get_analyzer, memory_dir

Progress = Callable[[int, int, str], None]


def _display(report: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Paths shown relative to the upload (the staging folder is gone after the run)."""
    def rel(p: str) -> str:
        return str(Path(p).relative_to(folder)) if p.startswith(str(folder)) else Path(p).name
    report["failed"] = [f | {"path": rel(f["path"]), "reason": (f["reason"] or "").replace(str(folder) + "/", "")}
                        for f in report["failed"]]
    return report


def evaluate_uploads(uploads: tuple[Upload, ...], modality: str | None, profile: bytes | None,
                     progress: Progress) -> dict[str, Any]:
    """The evaluation report of labelled uploads (JSON-able), its per-file rows and its HTML page.
    The staged copies are deleted when this returns. ValueError / MediaError: a human message."""
    analyzer = get_analyzer().with_profile(None if profile is None else VoiceProfile.from_bytes(profile))
    with tempfile.TemporaryDirectory(prefix="emotion-own-", dir=memory_dir()) as d:
        items = stage_uploads([(u.name, u.data) for u in uploads], Path(d))
        report = evaluate_files(analyzer, items, modality, progress)
        doc = _display(report.to_dict(), Path(d))
        rows = [r | {"path": str(Path(r["path"]).relative_to(d))} for r in report.rows()]  # all inside: checked
    return {"report": doc, "rows": rows, "html": report_html(doc, "Evaluation on your recordings")}


def build_profile(uploads: tuple[Upload, ...], name: str, progress: Progress) -> tuple[bytes, dict[str, Any], list[str]]:
    """A voice profile fitted on labelled uploads: (profile file bytes, what it says of itself, skipped files)."""
    with tempfile.TemporaryDirectory(prefix="emotion-own-", dir=memory_dir()) as d:
        items = stage_uploads([(u.name, u.data) for u in uploads], Path(d))
        labels = next((u.name for u in uploads if u.name.lower().endswith((".csv", ".zip"))), "LABELS.csv")
        profile, failed = adapt(get_analyzer(), items, name, labels, progress)
        skipped = [(f.reason or "").replace(d + "/", "") for f in failed]
    return profile.to_bytes(), profile.to_dict(), skipped
