"""The same analysis, explanations and batch on the chosen device (a CUDA GPU, or the CPU), measured.

    python benchmarks/bench_device.py [--device auto] [--base BASE.mp4] [--clip CLIP.mp4]
        [--minutes 10] [--recordings 8] [--seconds 60] [--lime-samples 1000] [--compare CLIP_DIR]

Prints one JSON object with, for this machine: cold start, the whole analysis of a 4-s clip, Grad-CAM
per frame, LIME with 1000 samples on 4 s, a 10-minute 640x360 talking-face video (x real time, peak
host and GPU memory), and batch recordings per hour (one worker per GPU; on a CPU as many as ``batch``
chooses). ``--base`` is a 10-s talking-face clip that is looped (stream copy) to the long video and the
batch's recordings, ``--clip`` the 4-s clip; without them both are generated (this needs an ffmpeg
with libx264, as imageio-ffmpeg's has). ``--compare DIR`` also analyses the clips of
``tests/reference/analyze_plain.jsonl`` found in DIR on the device and on this machine's CPU, and
reports whether every label is the same and the largest probability difference: the CPU/GPU agreement
check (both with this machine's ffmpeg, so that only the device differs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import face_frame, looped_video, voiced_signal, write_video  # noqa: E402

from emotion_core.constants import EMOTIONS  # noqa: E402


def timed(fn, repeat: int = 5) -> float:
    fn()  # warm-up (and, on a GPU, kernel selection)
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def generated(folder: Path, seconds: float, name: str) -> Path:

    n = int(seconds * 10)
    return write_video(folder / name, [face_frame(shift=(i % 10) * 3) for i in range(n)], 10, voiced_signal(seconds))


def probabilities(doc: dict) -> np.ndarray:
    """Every probability in an ``analyze --json`` object (clip, branches, frames, windows, timeline), in order."""
    out: list[float] = []

    def walk(x: object, key: str = "") -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, k)
        elif isinstance(x, list):
            for v in x:
                walk(v, key)
        elif isinstance(x, float) and key in EMOTIONS:
            out.append(x)

    walk(doc)
    return np.array(out)


def compare(analyzer, clip_dir: Path) -> dict:
    """The clips of tests/reference/ analysed on this device and on this machine's CPU (same decoder):
    whether every label (clip and timeline) is the same, and the largest probability difference."""
    from emotion_core.analysis import Analyzer

    cpu = Analyzer(device="cpu")
    ref = [json.loads(x) for x in (ROOT / "tests" / "reference" / "analyze_plain.jsonl").read_text().splitlines()]
    same, worst, n, labels = True, 0.0, 0, []
    for r in ref:
        path = clip_dir / Path(r["file"]).name
        if not path.exists():
            continue
        here, there = analyzer.analyze(path).to_dict(), cpu.analyze(path).to_dict()
        same &= here["label"] == there["label"] and [w["label"] for w in here["timeline"]] == [
            w["label"] for w in there["timeline"]]
        worst = max(worst, float(np.abs(probabilities(there) - probabilities(here)).max()))
        labels.append(here["label"])
        n += 1
    return {"clips": n, "labels": labels, "same_labels_as_cpu": same, "max_probability_difference": worst}


def profile_long(a, video: Path) -> dict:
    """Each stage of the long video alone: audio decoding, frame decoding, detection, the face model."""
    from emotion_core.media import frame_rate_for, iter_frames, load_audio, prefetch, probe

    info = probe(video)
    fps = frame_rate_for(info.duration, a.frame_rate)
    stages = {}
    t = time.perf_counter()
    audio = load_audio(info)
    stages["audio_decode"] = time.perf_counter() - t
    t = time.perf_counter()
    frames = list(iter_frames(info, fps))
    stages["frame_decode"] = time.perf_counter() - t
    t = time.perf_counter()
    obs = [o for _, o in a.detector.track(prefetch(iter(frames), a.batching.prefetch), a.batching.detect) if o is not None]
    sync()
    stages["detect_and_crop"] = time.perf_counter() - t
    t = time.perf_counter()
    a.face_branch(((o.t, o) for o in obs), [], float(info.duration))
    sync()
    stages["face_model"] = time.perf_counter() - t
    t = time.perf_counter()
    a.voice_branch(audio, [], "video")
    sync()
    stages["voice_branch"] = time.perf_counter() - t
    return {k: round(v, 2) for k, v in stages.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--base", help="10-s talking-face clip looped into the long video and the batch's recordings")
    ap.add_argument("--clip", help="the 4-s clip")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--recordings", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--lime-samples", type=int, default=1000)
    ap.add_argument("--compare", help="folder holding the shared clips of tests/reference/")
    ap.add_argument("--skip", nargs="*", default=[], choices=["long", "batch", "lime"])
    ap.add_argument("--profile", action="store_true", help="time the long video's stages one by one")
    ap.add_argument("--tf32", choices=["on", "off"], default=None,
                    help="cuDNN TF32 convolutions (default: off, as the Analyzer sets it)")
    args = ap.parse_args()

    import torch

    from emotion_core.analysis import Analyzer
    from emotion_core.batch import Settings, run_batch
    from emotion_core.devices import exact_on, resolve_device
    from emotion_core.explain import explain_voice, face_cams

    device = exact_on(resolve_device(args.device))
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    t = time.perf_counter()
    a = Analyzer(device=device)
    sync()
    loading = round(time.perf_counter() - t, 2)
    if args.tf32:  # after the Analyzer, which turns it off
        torch.backends.cudnn.allow_tf32 = args.tf32 == "on"
    out: dict = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                             "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                             "device": str(device), "gpu": gpu,
                             "cudnn_tf32": torch.backends.cudnn.allow_tf32 if device.type == "cuda" else None},
                 "model_loading_s": loading}
    print(json.dumps(out["machine"]), flush=True)
    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as d:
        d = Path(d)
        clip = Path(args.clip) if args.clip else generated(d, 4.0, "clip4.mp4")
        base = Path(args.base) if args.base else generated(d, 10.0, "base10.mp4")
        res = a.analyze(clip, keep_audio=True)
        out["clip"] = {"file": clip.name, "duration_s": res.duration, "label": res.label,
                       "analysis_s": round(timed(lambda: a.analyze(clip), 5), 3)}
        kept = res.kept_frames
        if kept:
            one = kept[0].face_input[None]
            out["gradcam_per_frame_s"] = round(timed(lambda: face_cams(a.models.face, one, ["happy"]), 10), 4)
        if res.voice is not None and "lime" not in args.skip:
            audio = res.audio[: 4 * 16000]
            explain_voice(a.models.voice, audio, n_samples=64)  # warm-up
            sync()
            t = time.perf_counter()
            explain_voice(a.models.voice, audio, n_samples=args.lime_samples)
            sync()
            out["lime_s"] = {"samples": args.lime_samples, "seconds": round(time.perf_counter() - t, 3)}
        print(json.dumps({k: out[k] for k in out if k != "machine"}), flush=True)
        if args.compare:
            out["agreement_with_cpu"] = compare(a, Path(args.compare))
            print(json.dumps(out["agreement_with_cpu"]), flush=True)
        if "long" not in args.skip:
            video = looped_video(base, args.minutes * 60, d / "long.mp4")
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            t = time.perf_counter()
            long = a.analyze(video)
            sync()
            wall = time.perf_counter() - t
            out["long_video"] = {
                "duration_s": round(long.duration, 1), "analysis_s": round(wall, 2),
                "x_real_time": round(long.duration / wall, 1), "frame_rate": long.face.frame_rate if long.face else None,
                "face_frames": long.face.frames_used if long.face else 0, "label": long.label,
                "peak_host_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "peak_gpu_mb": round(torch.cuda.max_memory_allocated(device) / 2**20) if device.type == "cuda" else None}
            print(json.dumps(out["long_video"]), flush=True)
            if args.profile:
                out["long_video"]["stages_s"] = profile_long(a, video)
                print(json.dumps(out["long_video"]["stages_s"]), flush=True)
            video.unlink()
        if "batch" not in args.skip:
            inputs = d / "in"
            inputs.mkdir()
            for i in range(args.recordings):
                looped_video(base, args.seconds, inputs / f"rec{i:03d}.mp4")
            stats = run_batch([inputs], d / "out", settings=Settings(device=str(device)))
            out["batch"] = {k: stats[k] for k in ("recordings", "workers", "wall_s", "recordings_per_hour",
                                                  "real_time_factor")} | {"seconds_each": args.seconds}
            print(json.dumps(out["batch"]), flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
