"""The shipped voice model: the fine-tuned encoder and a linear probe on the frozen encoder, together.

Why a second model: the fine-tuned encoder (``VoiceNet``) and the pretrained, frozen one see a
voice differently; the equal-weight geometric mean of their probabilities is right more often
than either (5-fold actor-held-out figures in the model card). Why frozen: its features mean the
same for a speaker it has never heard as for the training actors, which is what makes the
personal baseline (``baseline.py``) honest to measure and to use. The probe's features are the
mean and standard deviation over time of the encoder's five hidden states (3840 numbers per
window), standardised, then a linear layer. The baseline head sees the same features next to the
features minus the person's baseline, which lets it learn how far from the person's own usual
voice a window is. How the heads are fitted: ``emotion_core.training.train_probe``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .constants import EMOTIONS
from .familiarity import Familiarity
from .whisper import WhisperEncoder, WhisperEncoderConfig

ENSEMBLE_WEIGHT = 0.5
"""Weight of the probe in the geometric mean with the fine-tuned model (equal weights, not tuned)."""


NORMS = ("none", "layer")
"""How the plain head sees a clip's features: as they are, or ``layer``: each of the ten blocks (mean and
standard deviation of each hidden state) standardised over its own numbers (a per-recording normalisation)."""


def normalise_features(f: torch.Tensor, norm: str, blocks: int) -> torch.Tensor:
    """Features under a normalisation of ``NORMS``."""
    if norm == "none":
        return f
    if norm != "layer":
        raise ValueError(f"unknown normalisation {norm!r}: one of {', '.join(NORMS)}")
    b = f.reshape(*f.shape[:-1], blocks, -1)
    b = (b - b.mean(-1, keepdim=True)) / b.std(-1, unbiased=False, keepdim=True).clamp_min(1e-6)
    return b.reshape(f.shape)


@dataclass
class ProbeConfig:
    encoder: WhisperEncoderConfig = field(default_factory=WhisperEncoderConfig)
    n_classes: int = len(EMOTIONS)
    norm: str = "none"  # NORMS: how the plain head sees the features
    familiarity_components: int = 0  # > 0: the checkpoint holds a familiarity model (familiarity.py)

    @property
    def n_blocks(self) -> int:
        """Mean and standard deviation of each hidden state (the embedding and every layer's output)."""
        return 2 * (self.encoder.n_layers + 1)

    @property
    def n_features(self) -> int:
        return self.encoder.d_model * self.n_blocks

    @classmethod
    def from_dict(cls, d: dict) -> ProbeConfig:
        return cls(encoder=WhisperEncoderConfig(**d["encoder"]), n_classes=d["n_classes"], norm=d.get("norm", "none"),
                   familiarity_components=d.get("familiarity_components", 0))


class StandardisedLinear(nn.Module):
    """Standardisation and a linear layer as one module (the fitted scaler and classifier)."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_in))
        self.register_buffer("scale", torch.ones(n_in))
        self.linear = nn.Linear(n_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear((x - self.mean) / self.scale)


class VoiceProbe(nn.Module):
    """Frozen Whisper tiny.en encoder -> time statistics -> linear heads (plain and baseline)."""

    def __init__(self, cfg: ProbeConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = WhisperEncoder(cfg.encoder)
        self.head = StandardisedLinear(cfg.n_features, cfg.n_classes)
        self.baseline_head = StandardisedLinear(2 * cfg.n_features, cfg.n_classes)
        self.familiarity = (Familiarity(cfg.n_features, cfg.familiarity_components)
                            if cfg.familiarity_components else None)

    def head_input(self, f: torch.Tensor) -> torch.Tensor:
        """What the plain head and the familiarity model read: the features under ``cfg.norm``."""
        return normalise_features(f, self.cfg.norm, self.cfg.n_blocks)

    def features(self, mel: torch.Tensor, n_frames: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, n_features): mean and (unbiased) standard deviation over the valid frames."""
        t_enc = (mel.shape[-1] + 1) // 2
        pad = None
        if n_frames is not None:
            pad = torch.arange(t_enc, device=mel.device)[None, :] >= ((n_frames + 1) // 2)[:, None]
        states = self.encoder(mel, pad)
        w = torch.ones(mel.shape[0], t_enc, 1, device=mel.device) if pad is None else (~pad).float()[..., None]
        n = w.sum(1)
        out = []
        for h in states:
            mean = (h * w).sum(1) / n
            var = (((h - mean[:, None]) ** 2) * w).sum(1) / (n - 1).clamp_min(1)
            out += [mean, var.sqrt()]
        return torch.cat(out, -1)

    def forward(self, mel: torch.Tensor, n_frames: torch.Tensor | None = None,
                baseline: torch.Tensor | None = None) -> torch.Tensor:
        f = self.features(mel, n_frames)
        if baseline is None:
            return self.head(self.head_input(f))
        return self.baseline_head(torch.cat([f, f - baseline.to(f.dtype)], -1))


class VoiceEnsemble(nn.Module):
    """The shipped voice model: fine-tuned ``VoiceNet`` and frozen ``VoiceProbe`` together.

    Returns the weighted mean of the two calibrated log-probabilities (a geometric mean of the
    probabilities); the ensemble's own temperature is applied to this by the caller, like any
    model's. With ``baseline`` (features of the person's baseline recording) the probe uses its
    baseline head; the fine-tuned model is unchanged.
    """

    def __init__(self, finetuned: nn.Module, probe: VoiceProbe, finetuned_temperature: float = 1.0,
                 weight: float = ENSEMBLE_WEIGHT):
        super().__init__()
        self.finetuned, self.probe = finetuned, probe
        self.finetuned_temperature, self.weight = finetuned_temperature, weight

    accepts_baseline = True

    @property
    def cfg(self):
        return self.finetuned.cfg

    def forward(self, mel: torch.Tensor, n_frames: torch.Tensor | None = None,
                baseline: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_with_features(mel, n_frames, baseline)[0]

    def forward_with_features(self, mel: torch.Tensor, n_frames: torch.Tensor | None = None,
                              baseline: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The ensemble's output and the frozen encoder's features it was computed from (for a profile and the
        recording's familiarity)."""
        a = torch.log_softmax(self.finetuned(mel, n_frames) / self.finetuned_temperature, -1)
        f = self.probe.features(mel, n_frames)
        head = self.probe.head(self.probe.head_input(f)) if baseline is None else self.probe.baseline_head(
            torch.cat([f, f - baseline.to(f.dtype)], -1))
        return (1 - self.weight) * a + self.weight * torch.log_softmax(head, -1), f

    def randomised(self) -> VoiceEnsemble:
        """Both members freshly initialised (the model-randomisation sanity check's reference)."""
        return VoiceEnsemble(type(self.finetuned)(self.finetuned.cfg), VoiceProbe(self.probe.cfg),
                             self.finetuned_temperature, self.weight)
