"""The 'Your data' page's work: labelled uploads staged in memory, evaluated, and a profile fitted."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from emotion_core.own_data import LabelledFile, adapt, evaluate_files, report_html, stage_uploads
from emotion_core.profile import VoiceProfile
from pages.ui.common import Upload, get_analyzer, memory_dir

Progress = Callable[[int, int, str], None]


@contextmanager
def _staged(uploads: tuple[Upload, ...], tier: str | None = None
            ) -> Iterator[tuple[list[LabelledFile], Callable[[str], str]]]:
    """The labelled uploads staged in memory-backed storage (deleted on exit), and a function that writes a
    path or message relative to the upload (``stage_uploads`` keeps every file inside the staging folder)."""
    with tempfile.TemporaryDirectory(prefix="emotion-own-", dir=memory_dir()) as d:
        yield stage_uploads([(u.name, u.data) for u in uploads], Path(d), tier), lambda text: text.replace(d + "/", "")


def evaluate_uploads(uploads: tuple[Upload, ...], modality: str | None, profile: bytes | None,
                     progress: Progress, tier: str | None = None) -> dict[str, Any]:
    """The evaluation report of labelled uploads (JSON-able), its per-file rows and its HTML page.
    The staged copies are deleted when this returns. ValueError / MediaError: a human message."""
    analyzer = get_analyzer().with_profile(None if profile is None else VoiceProfile.from_bytes(profile))
    with _staged(uploads, tier) as (items, relative):
        report = evaluate_files(analyzer, items, modality, progress)
        doc = report.to_dict()
        doc["failed"] = [{"path": relative(f["path"]), "reason": relative(f["reason"] or "")} for f in doc["failed"]]
        rows = [r | {"path": relative(r["path"]), "error": relative(r["error"])} for r in report.rows()]
    segments = any(it.is_segment for it in items)
    return {"report": doc, "rows": rows, "segments": segments,
            "html": report_html(doc, "Evaluation on your recordings", "coded segments" if segments else "files")}


def build_profile(uploads: tuple[Upload, ...], name: str, progress: Progress, tier: str | None = None
                  ) -> tuple[bytes, dict[str, Any], list[str]]:
    """A voice profile fitted on labelled uploads: (profile file bytes, what it says of itself, skipped files)."""
    with _staged(uploads, tier) as (items, relative):
        labels = next((u.name for u in uploads if u.name.lower().endswith((".csv", ".zip", ".eaf", ".textgrid"))),
                      "LABELS.csv")
        profile, failed = adapt(get_analyzer(), items, name, labels, progress)
        skipped = [relative(f.reason or "") for f in failed]
    return profile.to_bytes(), profile.to_dict(), skipped
