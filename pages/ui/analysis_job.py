"""A long analysis runs in a thread of its own while the page shows its progress (stage, share done,
time left) and a Cancel button. Clicks then reach an idle page: a click during a running script
makes Streamlit drop the uploaded file, so the script never blocks for long."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import streamlit as st

from emotion_core.analysis import AnalysisResult
from pages.ui.common import Upload, analyze_upload, results, upload_key

QUICK_S = 10.0
"""A recording analysed within this long is shown at once, without the polling view."""


class Cancelled(BaseException):
    """Raised inside the analysis (through its progress callback) when the user cancels."""


@dataclass
class Job:
    up: Upload
    key: str
    fraction: float = 0.0
    stage: str = "starting"
    started: float = field(default_factory=time.monotonic)
    result: AnalysisResult | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    def report(self, fraction: float, stage: str) -> None:
        if self.cancel.is_set():
            raise Cancelled
        self.fraction, self.stage = fraction, stage

    def run(self) -> None:
        try:
            self.result = analyze_upload(self.up, self.report)
        except Cancelled:
            pass  # the temporary copy is gone with the analysis; nothing was stored
        finally:
            self.done.set()

    @property
    def status(self) -> str:
        elapsed = time.monotonic() - self.started
        f = min(max(self.fraction, 0.0), 1.0)
        left = f", about {elapsed * (1 - f) / f:.0f} s left" if 0.05 < f < 1 and elapsed > 2 else ""
        return f"{self.stage[0].upper()}{self.stage[1:]}… {f:.0%}{left}"


def job_for(up: Upload) -> Job:
    """This session's analysis of ``up``: the running one, or a new one started now."""
    key = upload_key(up)
    job = st.session_state.get("job")
    if job is None or job.key != key:
        if job is not None:
            job.cancel.set()  # a new upload replaces one still being analysed: stop that one
        job = Job(up, key)
        st.session_state["job"] = job
        threading.Thread(target=job.run, daemon=True, name=f"analysis {up.name}").start()
    return job


@st.fragment(run_every=2.0)
def progress_view(job: Job) -> None:
    """Redrawn every two seconds until the analysis ends, then the whole page runs again."""
    if job.done.is_set():
        st.rerun()
    st.progress(min(max(job.fraction, 0.0), 1.0), text=job.status)
    st.button("Cancel", key="cancel", on_click=job.cancel.set, help="Stop this analysis; nothing of it is kept")


def analysis_of(up: Upload) -> AnalysisResult | None:
    """The analysis of ``up``: at once when it is stored or quick; else None after laying out its
    progress (the page stops there and is run again when the analysis ends)."""
    if (res := results().get(upload_key(up))) is not None:
        return res
    job = job_for(up)
    if job.cancel.is_set() and job.done.is_set():
        st.info(f"The analysis of {up.name} was cancelled; nothing of it was kept.")
        st.button("Analyse it after all", on_click=st.session_state.pop, args=("job",))
        return None
    bar = st.empty()
    while not job.done.wait(0.25) and time.monotonic() - job.started < QUICK_S:
        bar.progress(min(max(job.fraction, 0.0), 1.0), text=job.status)
    bar.empty()
    if not job.done.is_set():
        progress_view(job)
        return None
    return job.result
