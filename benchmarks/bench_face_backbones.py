"""Cost per face of each face backbone (the same computation whatever the weights), in batches of 8 as the app
classifies crops, and of one explanation map per frame (occlusion, the app's default, and LayerCAM) with the
shipped face model.

    python benchmarks/bench_face_backbones.py [--threads N]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from bench import timed  # this folder's shared median-of-repeats timer

from emotion_core.explain import face_cams
from emotion_core.models import BACKBONES, FaceConfig, FaceNet
from emotion_core.registry import load_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.rand(8, 1, 48, 48)
    for backbone in BACKBONES:
        net = FaceNet(FaceConfig(backbone=backbone)).eval()
        with torch.inference_mode():
            s = timed(lambda net=net: net(x), args.repeats)
        params = sum(q.numel() for q in net.parameters()) / 1e6
        print(f"{backbone}: {1000 * s / 8:.2f} ms per face ({params:.1f} M parameters, {args.threads} thread(s))")
    lm = load_model("face")
    face = np.random.default_rng(0).random((1, 48, 48)).astype(np.float32)
    for method, repeats in (("occlusion", 5), ("layercam", 10)):
        s = timed(lambda m=method: face_cams(lm, face, ["happy"], m), repeats)
        print(f"{method} map per frame: {s:.3f} s")


if __name__ == "__main__":
    main()
