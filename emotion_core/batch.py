"""Batch analysis at study scale: many recordings, one machine or a Ray cluster, one code path.

    python -m emotion_core batch INPUT [INPUT ...] --out RESULTS [--workers N] [--csv] [--ray [ADDRESS]]

Every recording goes through the same ``Analyzer.analyze`` as the app and ``analyze``. Its
outcome (timeline rows and a summary, or the error message) is written atomically to
``RESULTS/parts/<key>.json`` as soon as it is done, where the key is derived from the
recording's path; a part remembers the file's size and modification time. A re-run with the
same ``--out`` skips every recording whose part matches its file (resumable, idempotent), redoes
changed files in place (no duplicate rows), and retries failures only with ``--retry-failed``.
At the end the parts are gathered into

* ``RESULTS/windows.parquet``: one row per timeline window per recording (file, start, end,
  label, agreement, fused / face / voice probabilities, notes);
* ``RESULTS/recordings.parquet``: one row per recording (status, error, duration, clip-level
  probabilities, label, agreement, share of windows where face and voice disagree, warnings,
  processing time);

and ``.csv`` twins with ``--csv``. Locally, recordings run in worker processes that each load
the models once (``--workers``, default: as many as cores and memory allow); with ``--ray`` the
same function runs in Ray actors that hold the models, and the driver writes the same files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from .analysis import Analyzer, prob_columns
from .constants import EMOTIONS
from .devices import DeviceError, resolve_device
from .errors import MediaError
from .media import Limits, expand_inputs
from .options import (
    add_device_argument,
    add_export_arguments,
    add_frame_rate_argument,
    add_profile_argument,
    parse_span,
)
from .profile import VoiceProfile
from .session import SOURCES
from .tiers import ResultTiers, result_tiers, write_annotations

log = logging.getLogger(__name__)

WORKER_MEMORY_GB = 1.2
"""What one worker (both models, the face detector, one recording in flight) needs, measured
with benchmarks/bench_long.py on a 10-minute video (peak 1.45 GB for the whole process)."""
BATCH_MAX_MB = 20_000.0
BATCH_MAX_DURATION_S = 6 * 3600.0
EXPORT_FOLDERS = {".eaf": "elan", ".TextGrid": "praat"}
MAX_TASKS_PER_WORKER = 200
"""A worker process is replaced after this many recordings, so slow leaks cannot accumulate."""


@dataclass(frozen=True)
class Settings:
    """What every worker analyses with: the input limits and, optionally, the stretch of each
    recording (seconds) that stands for the person's usual voice (a session's baseline period)."""

    max_mb: float = BATCH_MAX_MB
    max_duration_s: float = BATCH_MAX_DURATION_S
    baseline_span: tuple[float, float] | None = None
    frame_rate: float | None = None  # None: by length (media.frame_rate_for)
    device: str = "auto"  # where each worker runs the networks (devices.resolve_device); one worker per GPU
    profile: str | None = None  # a profile file (``adapt``) every worker reads voices through

    def analyzer(self, device: str | None = None) -> Analyzer:
        """A worker's analyser with these settings (its profile applied)."""
        a = Analyzer(limits=Limits(max_file_mb=self.max_mb, max_duration_s=self.max_duration_s),
                     frame_rate=self.frame_rate, device=device or self.device)
        return a.with_profile(VoiceProfile.load(self.profile)) if self.profile else a

    @property
    def span_text(self) -> str | None:
        return None if self.baseline_span is None else "{:g}:{:g}".format(*self.baseline_span)


@dataclass(frozen=True)
class Job:
    path: str
    key: str
    size: int
    mtime_ns: int


def job_for(path: Path) -> Job:
    """The identity of one recording: its resolved path names the part file; size and mtime tell
    whether a finished part still describes the file."""
    st = path.stat()
    key = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:20]
    return Job(str(path), key, st.st_size, st.st_mtime_ns)


# -- one recording --------------------------------------------------------------------------
def analyze_job(analyzer: Any, job: Job, settings: Settings = Settings()) -> dict[str, Any]:
    """Analyse one recording into a part: never raises for a bad file (the part holds the error)."""
    t0 = time.perf_counter()
    res = analyzer.analyze(job.path, baseline_span=settings.baseline_span)
    elapsed = time.perf_counter() - t0
    windows = res.timeline_rows()
    disagree = [w["agreement"] == "disagree" for w in windows if w["agreement"] is not None]
    summary: dict[str, Any] = {
        "file": job.path, "status": "error" if res.error else "ok", "error": res.error, "kind": res.kind,
        "duration_s": res.duration, "label": res.label, "agreement": res.agreement,
        "n_windows": len(windows), "disagree_share": (sum(disagree) / len(disagree)) if disagree else None,
        "face_frames_used": None if res.face is None else res.face.frames_used,
        "voiced_seconds": None if res.voice is None else res.voice.voiced_seconds,
        "baseline_span": settings.span_text, "frame_rate": settings.frame_rate, "profile": settings.profile,
        "warnings": "; ".join(res.warnings), "processing_s": elapsed, "size": job.size, "mtime_ns": job.mtime_ns,
    }
    for prefix, p in (("", res.probs), ("face_", res.face and res.face.probs), ("voice_", res.voice and res.voice.probs)):
        summary |= prob_columns(p, prefix)
    session = res.summary()  # the session summary: time shares as columns, the lists as JSON text
    for source in SOURCES:
        shares = None if session is None else session.time_share[source]
        summary |= {f"share_{source}_{e}": None if shares is None else shares[e] for e in EMOTIONS}
    doc = None if session is None else session.to_dict()
    tiers = None if res.error or res.kind == "image" or not res.duration else \
        replace(result_tiers(res), media=str(Path(job.path).resolve())).to_dict()
    summary |= {"segments": None if doc is None else json.dumps(doc["segments"]),
                "disagreements": None if doc is None else json.dumps(doc["disagreements"]),
                "n_segments": None if doc is None else len(doc["segments"]),
                "n_disagreements": None if doc is None else len(doc["disagreements"])}
    return {"key": job.key, "summary": summary, "windows": windows, "tiers": tiers}


_WORKER_ANALYZER: Any = None
_WORKER_SETTINGS = Settings()


def _init_worker(threads: int, settings: Settings, gpu_counter: Any = None) -> None:
    """Load the models once per worker process; on GPUs, worker k takes GPU k (round robin)."""
    global _WORKER_ANALYZER, _WORKER_SETTINGS
    torch.set_num_threads(threads)
    device = settings.device
    if gpu_counter is not None:
        with gpu_counter.get_lock():
            device = f"cuda:{gpu_counter.value % torch.cuda.device_count()}"
            gpu_counter.value += 1
    _WORKER_ANALYZER = settings.analyzer(device)
    _WORKER_SETTINGS = settings


def _run_in_worker(job: Job) -> dict[str, Any]:
    return analyze_job(_WORKER_ANALYZER, job, _WORKER_SETTINGS)


# -- the output folder ----------------------------------------------------------------------
class ResultStore:
    """``RESULTS/parts/*.json``, one per recording, written atomically; and the gathered tables."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.parts = self.out / "parts"
        self.parts.mkdir(parents=True, exist_ok=True)

    def _part(self, key: str) -> Path:
        return self.parts / f"{key}.json"

    def is_done(self, job: Job, retry_failed: bool = False, settings: Settings = Settings(),
                need_tiers: bool = False) -> bool:
        """Whether the part of ``job`` still describes its file under ``settings`` (``need_tiers``: and holds
        the annotation tiers, which parts written before they existed lack)."""
        p = self._part(job.key)
        if not p.exists():
            return False
        try:
            part = json.loads(p.read_text())
            s = part["summary"]
        except (OSError, ValueError, KeyError):
            return False  # a damaged part is redone
        if retry_failed and s["status"] == "error":
            return False
        if need_tiers and s["status"] == "ok" and "tiers" not in part:
            return False
        same_settings = (s.get("baseline_span") == settings.span_text
                         and s.get("frame_rate") == settings.frame_rate and s.get("profile") == settings.profile)
        return s["size"] == job.size and s["mtime_ns"] == job.mtime_ns and same_settings

    def write(self, part: dict[str, Any]) -> None:
        final = self._part(part["key"])
        tmp = final.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(part))
        os.replace(tmp, final)  # a crash mid-write never leaves a half part behind

    def export(self, suffix: str) -> list[Path]:
        """One annotation file per analysed recording (``.eaf`` into ``RESULTS/elan``, ``.TextGrid`` into
        ``RESULTS/praat``), named after the recording (its key added when two share a name); the files
        written."""
        folder = self.out / EXPORT_FOLDERS[suffix]
        parts = [json.loads(p.read_text()) for p in sorted(self.parts.glob("*.json"))]
        parts = [p for p in parts if p.get("tiers")]
        stems = [Path(p["summary"]["file"]).stem for p in parts]
        written = []
        for part, stem in zip(parts, stems, strict=True):
            name = stem if stems.count(stem) == 1 else f"{stem}-{part['key'][:8]}"
            written.append(write_annotations(ResultTiers.from_dict(part["tiers"]), folder / f"{name}{suffix}"))
        return written

    def gather(self, csv: bool = False) -> tuple[Any, Any]:
        """All parts -> (windows, recordings) data frames, sorted, written as Parquet (and CSV)."""
        import pandas as pd

        summaries, windows = [], []
        for p in sorted(self.parts.glob("*.json")):
            part = json.loads(p.read_text())
            summaries.append(part["summary"])
            windows += part["windows"]
        rec = pd.DataFrame(summaries)
        win = pd.DataFrame(windows)
        if len(rec):
            rec = rec.sort_values("file", kind="stable").reset_index(drop=True)
        if len(win):
            win = win.sort_values(["file", "start"], kind="stable").reset_index(drop=True)
        for name, df in (("windows", win), ("recordings", rec)):
            df.to_parquet(self.out / f"{name}.parquet", index=False)
            if csv:
                df.to_csv(self.out / f"{name}.csv", index=False)
        return win, rec


# -- executors ------------------------------------------------------------------------------
def default_workers(device: str = "auto") -> int:
    """One worker per GPU on GPUs; else as many workers as cores, fewer when memory is short (each
    holds its own models)."""
    if resolve_device(device).type == "cuda":
        return torch.cuda.device_count()
    cores = os.cpu_count() or 1
    try:
        avail_gb = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (ValueError, OSError, AttributeError):
        avail_gb = WORKER_MEMORY_GB * cores
    return max(1, min(cores, int(avail_gb // WORKER_MEMORY_GB)))


def run_local(jobs: list[Job], workers: int, settings: Settings) -> Iterator[dict[str, Any]]:
    """Parts as they finish, from a pool of worker processes (or in-process with one worker)."""
    cores = os.cpu_count() or 1
    threads = max(1, cores // max(1, workers))
    if workers <= 1:
        _init_worker(threads, settings)
        for job in jobs:
            yield _run_in_worker(job)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = mp.get_context("spawn")
    gpus = ctx.Value("i", 0) if resolve_device(settings.device).type == "cuda" else None
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(threads, settings, gpus), max_tasks_per_child=MAX_TASKS_PER_WORKER)
    try:
        futures = {pool.submit(_run_in_worker, job): job for job in jobs}
        for fut in as_completed(futures):
            try:
                part = fut.result()
            except Exception as e:  # the worker died (out of memory, a crash in native code)
                part = failed_part(futures[fut], f"the worker analysing this file stopped ({type(e).__name__}).")
            yield part
    finally:  # interrupted or done: queued files are dropped, files in flight finish (a re-run skips them)
        pool.shutdown(wait=True, cancel_futures=True)


def run_ray(jobs: list[Job], workers: int, settings: Settings, address: str | None
            ) -> Iterator[dict[str, Any]]:
    """The same parts from Ray actors that each hold the models (``address``: an existing cluster,
    or None for a local Ray instance on this machine)."""
    try:
        import ray
        from ray.util import ActorPool
    except ImportError as e:
        raise SystemExit("--ray needs Ray: pip install -r requirements-batch.txt") from e

    started = not ray.is_initialized()
    if started:
        kw: dict[str, Any] = {"address": address} if address else {
            "num_cpus": os.cpu_count() or 1, "object_store_memory": 200 * 2**20, "include_dashboard": False}
        ray.init(log_to_driver=False, **kw)
    try:
        cores = int(ray.cluster_resources().get("CPU", 1))
        gpus = int(ray.cluster_resources().get("GPU", 0))
        on_gpu = settings.device.startswith("cuda") or (settings.device == "auto" and gpus > 0)
        if on_gpu and not gpus:
            raise SystemExit(f"--device {settings.device}: the Ray cluster has no GPU.")
        n = max(1, min(workers, gpus if on_gpu else cores))
        threads = max(1, cores // n) if not address else 1
        if on_gpu:  # an actor per GPU; Ray makes its one GPU the only one it sees
            settings = replace(settings, device="cuda")

        @ray.remote(num_cpus=threads if not address else 1, num_gpus=1 if on_gpu else 0)
        class RayWorker:
            def __init__(self) -> None:
                _init_worker(threads, settings)

            def run(self, job: Job) -> dict[str, Any]:
                return _run_in_worker(job)

        pool = ActorPool([RayWorker.remote() for _ in range(n)])
        yield from pool.map_unordered(lambda a, j: a.run.remote(j), jobs)
    finally:
        if started:
            ray.shutdown()


def failed_part(job: Job, message: str) -> dict[str, Any]:
    summary = {"file": job.path, "status": "error", "error": message, "size": job.size, "mtime_ns": job.mtime_ns}
    return {"key": job.key, "summary": summary, "windows": []}


# -- the command ----------------------------------------------------------------------------
def run_batch(inputs: Iterable[str | Path], out: str | Path, workers: int | None = None, csv: bool = False,
              ray_address: str | None = None, use_ray: bool = False, retry_failed: bool = False,
              settings: Settings = Settings(),
              on_part: Callable[[dict[str, Any]], None] | None = None, exports: tuple[str, ...] = ()
              ) -> dict[str, Any]:
    """Analyse every recording under ``inputs`` into ``out``; returns counts and timings. ``exports``:
    ``.eaf`` and/or ``.TextGrid``, one annotation file per recording (``ResultStore.export``)."""
    from tqdm import tqdm

    store = ResultStore(out)
    paths = expand_inputs([str(p) for p in inputs])
    jobs, missing = [], []
    for p in paths:
        try:
            jobs.append(job_for(p))
        except OSError:
            missing.append(p)
    for p in missing:  # a path that does not exist is a failure too, reported like the others
        store.write(failed_part(Job(str(p), hashlib.sha1(str(p.resolve()).encode()).hexdigest()[:20], -1, -1),
                                f"{p}: no such file."))
    todo = [j for j in jobs if not store.is_done(j, retry_failed, settings, need_tiers=bool(exports))]
    workers = workers or default_workers("cpu" if use_ray else settings.device)  # Ray: its actors ask for GPUs
    workers = max(1, min(workers, len(todo) or 1))
    t0 = time.perf_counter()
    audio_s = 0.0
    failures = 0
    parts: Iterable[dict[str, Any]] = () if not todo else (
        run_ray(todo, workers, settings, ray_address) if use_ray else run_local(todo, workers, settings))
    with tqdm(total=len(todo), unit="rec", desc="batch", file=sys.stderr, dynamic_ncols=True,
              disable=not sys.stderr.isatty()) as bar:
        for part in parts:
            store.write(part)
            s = part["summary"]
            audio_s += float(s.get("duration_s") or 0.0)
            failures += s["status"] == "error"
            wall = time.perf_counter() - t0
            bar.set_postfix(rtf=f"{audio_s / wall:.1f}x", failed=failures, refresh=False)
            bar.update(1)
            if on_part is not None:
                on_part(part)
    wall = time.perf_counter() - t0
    win, rec = store.gather(csv)
    exported = {suffix: len(store.export(suffix)) for suffix in exports}
    stats = {"recordings": len(jobs) + len(missing), "analysed": len(todo), "skipped": len(jobs) - len(todo),
             "failed": int((rec["status"] == "error").sum()) if len(rec) else 0, "windows": len(win),
             "workers": workers, "engine": "ray" if use_ray else "local", "wall_s": round(wall, 2),
             "media_s": round(audio_s, 1),
             "real_time_factor": round(audio_s / wall, 2) if todo and wall > 0 else None,
             "recordings_per_hour": round(len(todo) / wall * 3600, 1) if todo and wall > 0 else None,
             "out": str(store.out)}
    if exported:
        stats["annotation_files"] = exported
    return stats


def cmd_batch(args: argparse.Namespace) -> int:
    try:
        span = parse_span(args.baseline_span) if args.baseline_span else None
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return 2
    if args.profile:
        try:
            VoiceProfile.load(args.profile)
        except MediaError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    settings = Settings(args.max_mb, args.max_duration, span, args.frame_rate, args.device,
                        str(Path(args.profile).resolve()) if args.profile else None)
    if args.ray is None:
        try:
            resolve_device(args.device)  # a Ray cluster's GPUs are its workers', not this machine's
        except DeviceError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    exports = tuple(suffix for flag, suffix in (("eaf", ".eaf"), ("textgrid", ".TextGrid")) if getattr(args, flag))
    stats = run_batch(args.inputs, args.out, args.workers, args.csv, args.ray or None, args.ray is not None,
                      args.retry_failed, settings, exports=exports)
    print(json.dumps(stats))
    return 0


def add_parser(sub: Any) -> None:
    b = sub.add_parser("batch", help="analyse folders of recordings into Parquet tables (resumable)")
    b.add_argument("inputs", nargs="+", help="files or folders (every media file under a folder)")
    b.add_argument("--out", required=True, help="results folder (re-using it resumes)")
    b.add_argument("--workers", type=int, default=None, help="parallel workers (default: cores, memory allowing)")
    b.add_argument("--csv", action="store_true", help="also write windows.csv and recordings.csv")
    b.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run on Ray: a cluster address (e.g. ray://head:10001 or auto), or none for local Ray")
    add_export_arguments(b, folder=True)
    b.add_argument("--retry-failed", action="store_true", help="analyse again the files that failed before")
    b.add_argument("--baseline-span", metavar="START:END", help="this stretch of every recording (seconds) is the "
                   "person's usual voice (a baseline period); each recording's voice is read relative to it")
    add_profile_argument(b)
    add_frame_rate_argument(b)
    add_device_argument(b)
    b.add_argument("--max-mb", type=float, default=BATCH_MAX_MB, help="largest file accepted (MB)")
    b.add_argument("--max-duration", type=float, default=BATCH_MAX_DURATION_S, help="longest recording (s)")
    b.set_defaults(func=cmd_batch)
