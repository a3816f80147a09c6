"""Where the networks run: ``auto`` (CUDA when torch sees a GPU, else the CPU), ``cpu`` or ``cuda``,
and how large a batch each stage sends there.

The same code path serves both: on a GPU, face detection, the face model, both voice members,
Grad-CAM and LIME's perturbed inputs run there in larger batches, so that the GPU is kept busy;
on a CPU nothing changes (the batch sizes below were measured on 2 cores).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

DEVICE_ENV = "EMOTION_DEVICE"
"""Environment variable the app reads for its device (``auto`` when unset)."""
DEVICE_CHOICES = ("auto", "cpu", "cuda")


class DeviceError(ValueError):
    """The requested device is not available; ``str(err)`` is a complete, human sentence."""


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """'auto' (or None) -> the GPU when torch sees one, else the CPU; 'cuda' or 'cuda:N' without such
    a GPU -> DeviceError; anything else as given."""
    if isinstance(name, torch.device):
        name = str(name)
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {name}: no CUDA GPU is visible to PyTorch on this machine "
                              "(torch.cuda.is_available() is False); use --device cpu or auto.")
        index = torch.device(name).index
        if index is not None and index >= torch.cuda.device_count():
            raise DeviceError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s).")
    try:
        return torch.device(name)
    except RuntimeError:
        raise DeviceError(f"--device {name}: not a device name; use auto, cpu or cuda.") from None


def exact_on(device: torch.device) -> torch.device:
    """Turn off TensorFloat-32 on a CUDA device (a process-wide switch of torch), so that the GPU's
    probabilities agree with the CPU's: with cuDNN's default TF32 convolutions they differed by up to
    0.09 on the shared clips, without them by 1.4e-6, and the 10-minute video was no slower (H200,
    benchmarks/bench_device.py). Returns ``device``."""
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    return device


def device_from_env() -> torch.device:
    """The app's device: ``EMOTION_DEVICE`` (auto, cpu, cuda, cuda:N), ``auto`` when unset."""
    return resolve_device(os.environ.get(DEVICE_ENV, "auto"))


def module_device(net: torch.nn.Module) -> torch.device:
    return next(net.parameters()).device


@dataclass(frozen=True)
class Batching:
    """Items per forward pass of each stage."""

    detect: int  # video frames per MTCNN call
    face: int  # face crops per face-model pass
    voice: int  # 4-s voice windows per voice-model pass
    lime: int  # perturbed spectrograms per voice-model pass
    prefetch: int  # decoded frames read ahead of detection (0: none)


CPU_BATCHING = Batching(detect=8, face=8, voice=16, lime=32, prefetch=0)
"""Measured on 2 cores: faces in 8s are faster than in 32s and hold 180 MB less (inference.FACE_BATCH)."""
GPU_BATCHING = Batching(detect=64, face=256, voice=64, lime=250, prefetch=128)
"""Large enough that each pass fills the GPU; frames are decoded ahead in a thread meanwhile."""


def batching_for(device: torch.device) -> Batching:
    return GPU_BATCHING if device.type == "cuda" else CPU_BATCHING
