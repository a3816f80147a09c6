"""Checkpoints and the model registry.

A checkpoint is a plain dict (loadable with ``weights_only=True``): the model kind, its config as
a dict, the weights (stored in float16 to keep ``weights/`` small), and metadata (training data,
protocol, metrics, calibration). ``weights/MANIFEST.json`` records each file's SHA-256, checked
before loading so a corrupted or swapped file is refused rather than silently used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .fusion import FusionConfig
from .models import MODEL_CLASSES, config_dict
from .voice_ensemble import ProbeConfig, VoiceEnsemble, VoiceProbe

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
REPORTS_DIR = Path(__file__).resolve().parent.parent / "reports"
"""Committed evaluation outputs (out-of-fold and test-split predictions, tables) the app reads."""
VOICE_OOF = "voice_offcorpus/voice_ravdess_ensemble_oof.csv"
"""The shipped voice ensemble's RAVDESS 5-fold out-of-fold predictions (actors held out), under REPORTS_DIR, each
at the temperature its recording's familiarity gives; ``voice_ensemble_oof.csv`` holds those of the RAVDESS-only
probe shipped until 2026-11-26, ``voice_corpora_compatible/`` those of the three-corpora head shipped until
issue #28."""
MANIFEST = "MANIFEST.json"
FILES = {"voice": "voice.pt", "face": "face.pt", "voice_probe": "voice_probe.pt"}
CLASSES = MODEL_CLASSES | {"voice_probe": (VoiceProbe, ProbeConfig)}


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(path: str | Path, kind: str, model: nn.Module, meta: dict[str, Any] | None = None,
                    *, update_manifest: bool = True, keep_fp32: tuple[str, ...] = ()) -> str:
    """Write a checkpoint and (by default) record its hash in the folder's MANIFEST.json.

    Weights are stored in float16 except those whose names start with a prefix in ``keep_fp32``
    (small heads whose standardisation would lose precision)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if v.is_floating_point() and not k.startswith(keep_fp32) else v)
             for k, v in model.state_dict().items()}
    torch.save({"kind": kind, "config": config_dict(model.cfg), "state_dict": state,
                "meta": meta or {}}, path)
    digest = sha256(path)
    if update_manifest:
        mpath = path.parent / MANIFEST
        manifest = json.loads(mpath.read_text()) if mpath.exists() else {}
        manifest[path.name] = digest
        mpath.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return digest


def load_checkpoint(path: str | Path, *, verify: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model a checkpoint describes; returns (model in eval mode, metadata). With ``verify`` the
    metadata also carries the checked ``sha256`` (a voice profile names the model it belongs to by it)."""
    path = Path(path)
    expected = None
    if verify:
        mpath = path.parent / MANIFEST
        expected = json.loads(mpath.read_text()).get(path.name) if mpath.exists() else None
        if expected is None:
            raise ValueError(f"{path}: no hash recorded in {MANIFEST}; refusing to load it.")
        if sha256(path) != expected:
            raise ValueError(f"{path}: SHA-256 does not match {MANIFEST}; the file is corrupt or replaced.")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    net_cls, cfg_cls = CLASSES[ckpt["kind"]]
    model = net_cls(cfg_cls.from_dict(ckpt["config"]))
    model.load_state_dict({k: v.float() if v.dtype in (torch.float16, torch.bfloat16) else v  # float64 stays
                           for k, v in ckpt["state_dict"].items()})
    return model.eval(), ckpt["meta"] | ({"sha256": expected} if expected else {})


@dataclass
class LoadedModel:
    kind: str
    model: nn.Module
    meta: dict[str, Any] = field(default_factory=dict)
    untrained: bool = False

    @property
    def temperature(self) -> float:
        return float(self.meta.get("temperature", 1.0))


def load_model(kind: str, weights_dir: str | Path | None = None, device: torch.device | str = "cpu") -> LoadedModel:
    """The shipped model of ``kind`` on ``device``; an untrained one, flagged as such, if none is shipped yet."""
    path = Path(weights_dir or WEIGHTS_DIR) / FILES[kind]
    if path.exists():
        model, meta = load_checkpoint(path)
        probe_path = path.parent / FILES["voice_probe"]
        if kind == "voice" and probe_path.exists():  # the shipped voice model is the ensemble
            probe, probe_meta = load_checkpoint(probe_path)
            ens = VoiceEnsemble(model, probe, float(meta.get("temperature", 1.0)), probe_meta["ensemble_weight"])
            return LoadedModel(kind, ens.eval().to(device), probe_meta | {"finetuned": meta})
        return LoadedModel(kind, model.to(device), meta)
    warnings.warn(f"no trained {kind} model at {path}; using an untrained network", stacklevel=2)
    torch.manual_seed(0)
    net_cls, cfg_cls = MODEL_CLASSES[kind]
    return LoadedModel(kind, net_cls(cfg_cls()).eval().to(device), {}, untrained=True)


@dataclass
class Models:
    voice: LoadedModel
    face: LoadedModel
    fusion: FusionConfig = field(default_factory=FusionConfig)

    @property
    def untrained(self) -> bool:
        return self.voice.untrained or self.face.untrained


def randomised(lm: LoadedModel, seed: int = 0) -> LoadedModel:
    """The same architecture and configuration with freshly initialised weights: the reference of the
    model-randomisation sanity check (an explanation that survives it explains the input, not the model)."""
    torch.manual_seed(seed)
    m = lm.model
    net = m.randomised() if isinstance(m, VoiceEnsemble) else type(m)(m.cfg)
    return LoadedModel(lm.kind, net.eval().to(next(m.parameters()).device))


def load_models(weights_dir: str | Path | None = None, device: torch.device | str = "cpu") -> Models:
    return Models(voice=load_model("voice", weights_dir, device), face=load_model("face", weights_dir, device),
                  fusion=FusionConfig.load(weights_dir or WEIGHTS_DIR))
