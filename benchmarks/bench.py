"""Speed and memory figures on this machine (printed, not asserted).

    python benchmarks/bench.py [CLIP] [--lime-samples 1000] [--threads 2]

CLIP defaults to a generated 4-second 640x360 clip (the astronaut portrait with a voiced signal).
Targets (issues): voice branch <= 0.3 s for 4 s of audio; face detection + classification of 20
frames of a 640x360 clip <= 1 s; Grad-CAM <= 0.1 s per frame; LIME 1000 samples <= 6 s; upload
to first result <= 3 s; cold start < 15 s; memory after three clips < 1.5 GB.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(fn, repeat: int = 5) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def lime_floor(voice, batch, n_samples: int) -> None:
    """The least time LIME's model passes can take here: the voice model's floating-point operations
    per perturbed 4-s input, times the samples, at this machine's best large-matrix-multiply rate in the
    precision LIME runs in (bfloat16 where native). Real passes (layer norms, attention, small matrices)
    run below that rate, so the true time is higher."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from emotion_core.explain import fast_cpu_dtype

    with FlopCounterMode(display=False) as fc, torch.inference_mode():
        voice.model(*batch)
    gflop = fc.get_total_flops() / 1e9
    dtype = fast_cpu_dtype() or torch.float32
    m = torch.randn(2048, 2048, dtype=dtype)
    rate = 2 * 2048**3 / timed(lambda: m @ m, 10) / 1e9
    print(f"LIME floor: {gflop:.2f} GFLOP per perturbed input x {n_samples} = {gflop * n_samples / 1000:.2f} TFLOP; "
          f"best {str(dtype).removeprefix('torch.')} matrix multiply here {rate:.0f} GFLOP/s -> at least "
          f"{gflop * n_samples / rate:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("clip", nargs="?", default=None, help="default: a generated 4-second 640x360 talking-face clip")
    ap.add_argument("--lime-samples", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    cold = subprocess.run([sys.executable, "-c", "import time; t=time.perf_counter(); "
                           "from emotion_core.analysis import Analyzer; Analyzer(); print(time.perf_counter()-t)"],
                          capture_output=True, text=True, cwd=ROOT)
    from emotion_core.analysis import Analyzer
    from emotion_core.constants import SAMPLE_RATE
    from emotion_core.explain import explain_voice, face_cams
    from emotion_core.faces import crop_face
    from emotion_core.features import log_mel, window_grid
    from emotion_core.fusion import fuse
    from emotion_core.inference import mel_batch, predict_faces, predict_voice_windows
    from emotion_core.media import iter_frames, load_audio, probe
    from emotion_core.profile import fit_profile, model_id

    clip = Path(args.clip) if args.clip else None
    if clip is None or not clip.exists():
        sys.path.insert(0, str(ROOT / "tests"))
        from conftest import face_frame, voiced_signal, write_video

        clip = write_video(Path(tempfile.gettempdir()) / "bench_clip_4s.mp4", [face_frame(i % 5) for i in range(40)], 10,
                           voiced_signal(4.0))
    a = Analyzer()
    info = probe(clip)
    audio = load_audio(info)
    a4 = np.resize(audio, 4 * SAMPLE_RATE) if audio is not None else None
    frames = list(iter_frames(info))
    frames = (frames * (20 // len(frames) + 1))[:20]
    det = a.detector  # crops as the shipped face model wants them (faces.crop_settings)
    tracked = [(f, o) for f, o in det.track(frames) if o is not None]
    faces = [o for _, o in tracked]
    face_in = np.stack([o.face_input for o in faces])
    mel = log_mel(a4) if a4 is not None else None
    res = a.analyze(clip)

    print(f"machine: {platform.processor() or platform.machine()}, {args.threads} torch threads, "
          f"torch {torch.__version__}, python {platform.python_version()}; clip {clip.name} ({info.duration:.1f} s)")
    print(f"cold start (import + load models + detector): {float(cold.stdout.strip() or 'nan'):.2f} s")
    decode = timed(lambda: (load_audio(probe(clip)), list(iter_frames(probe(clip)))), 3)
    print(f"decode (probe + audio + 5 fps frames): {decode:.3f} s")
    print(f"face detection, 20 frames 640x360: {timed(lambda: list(det.track(frames)), 3):.3f} s")
    fr0, o0 = tracked[0]
    for align in (True, False):
        ms = timed(lambda align=align: crop_face(fr0.rgb, o0.box, o0.landmarks, det.margin, align), 50) * 1000
        print(f"face crop, {'aligned to the template' if align else 'bare box'}: {ms:.2f} ms per face"
              + (" (the shipped model's)" if align == det.align else ""))
    print(f"face model, 20 crops (with mirror averaging): {timed(lambda: predict_faces(a.models.face, face_in)):.3f} s")
    if a4 is not None:
        print(f"voice features (log-mel of 4 s): {timed(lambda: log_mel(a4)):.4f} s")
        x, n = mel_batch([mel])
        with torch.inference_mode():
            print(f"voice model on 4 s: {timed(lambda: a.models.voice.model(x, n)):.3f} s")
        print(f"voice branch, 4 s of audio (windows + log-mel + model): "
              f"{timed(lambda: predict_voice_windows(a.models.voice, a4)):.3f} s")
        if hasattr(a.models.voice.model, "probe"):  # a voice profile adds one small matrix product
            rng = np.random.default_rng(0)
            n_feat = a.models.voice.model.probe.cfg.n_features
            prof = fit_profile(np.log(np.full((8, 8), 1 / 8)), rng.normal(size=(8, n_feat)), np.arange(8) % 2 * 4,
                               model_id(a.models.voice.meta), {"name": "bench"})
            profiled = a.with_profile(prof).voice_model
            print(f"voice branch with a profile: {timed(lambda: predict_voice_windows(profiled, a4)):.3f} s")
    if res.face is not None and res.voice is not None:
        fp, vp = res.face.probs, res.voice.probs
        print(f"fusion (clip level): {timed(lambda: fuse(fp, vp, 10, 3.0), 50) * 1000:.3f} ms; timeline of the clip: "
              f"{timed(lambda: a.timeline(window_grid(res.duration), res.face, res.voice), 20) * 1000:.2f} ms")
    print(f"whole analysis of the clip (upload to first result): {timed(lambda: a.analyze(clip), 3):.3f} s")
    print(f"Grad-CAM per frame: {timed(lambda: face_cams(a.models.face, face_in[:1], ['happy']), 5):.3f} s")
    print(f"Occlusion map per frame (121 model calls): "
          f"{timed(lambda: face_cams(a.models.face, face_in[:1], ['happy'], 'occlusion'), 3):.3f} s")
    if a4 is not None:
        t = time.perf_counter()
        explain_voice(a.models.voice, a4, n_samples=args.lime_samples)
        print(f"LIME, {args.lime_samples} samples on 4 s: {time.perf_counter() - t:.2f} s")
        lime_floor(a.models.voice, mel_batch([log_mel(a4)]), args.lime_samples)
    print(f"peak resident memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
