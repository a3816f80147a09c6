"""Profiles: the shipped voice model adapted to one group's own recordings, on a CPU, in minutes.

A research group records its people its own way (language, room, microphone, what "neutral" sounds
like there). A profile is a small correction fitted on a few dozen of its labelled clips:

    log p'(k) = gain * log p(k) + w_k . z + b_k        for the classes k the clips are labelled with

where ``p`` is the shipped ensemble's probability and ``z`` the frozen encoder's standardised
features of the same window (the features the ensemble's probe already computes, so a profile costs
one small matrix product). It is an L2-regularised logistic regression whose starting point, and
whose answer with no data, is the shipped model itself (w = 0, b = 0, gain = 1): with a few clips it
moves little; with more it moves more.

Classes the clips have no example of are protected: a profile only redistributes probability
*among the classes it was fitted on*, and leaves every other class's probability exactly as the
shipped model gives it. So a profile fitted on neutral, happy, sad and angry clips can never make a
fearful voice less fearful than the shipped model reads it.

A profile records what it was fitted on (clips per class, speakers, the labels file) and the hashes
of the model it belongs to; it refuses to load onto another model. Nothing of the clips themselves
is stored in it.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .constants import EMOTIONS
from .errors import MediaError
from .registry import LoadedModel
from .voice_ensemble import VoiceEnsemble

PROFILE_C = 0.1
"""Inverse L2 strength of the profile fit (the probe's value, fixed before any profile was measured)."""
PROFILE_FORMAT = 1


def fit_softmax(z: np.ndarray, labels: np.ndarray, allowed: np.ndarray, sample_weight: np.ndarray, c: float,
                offset: np.ndarray | None = None, targets: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """L2 logistic regression over ``allowed.shape[1]`` classes whose softmax, row by row, covers only the
    ``allowed`` ones.

    With ``targets`` ((n, k) bool, each row's label among them) a row's loss is minus the log of the
    probability summed over its targets (a label that stands for several classes), instead of ``labels``'.

    Minimises ``c * sum_i w_i * CE_i + |W|^2 / 2`` (scikit-learn's scaling). With ``offset`` (log
    probabilities of a prior model) the logits are ``gain * offset + z W^T + b`` and the bias and
    ``gain - 1`` are penalised too, so that no data means the prior model unchanged. Returns
    (W (k, d), b (k,), gain); classes never allowed (never a target) get zero weights (the caller decides their bias).
    """
    zt = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    mask = torch.from_numpy(np.asarray(allowed, bool))
    pos = None if targets is None else torch.from_numpy(np.asarray(targets, bool))
    w = torch.from_numpy(np.asarray(sample_weight, dtype=np.float32))
    off = None if offset is None else torch.from_numpy(np.asarray(offset, dtype=np.float32))
    lin = nn.Linear(z.shape[1], mask.shape[1])
    nn.init.zeros_(lin.weight)
    nn.init.zeros_(lin.bias)
    gain = nn.Parameter(torch.ones(()))
    params = [*lin.parameters(), gain] if off is not None else list(lin.parameters())
    opt = torch.optim.LBFGS(params, lr=1, max_iter=500, history_size=20, tolerance_grad=1e-6,
                            tolerance_change=1e-9, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logits = lin(zt) if off is None else gain * off + lin(zt)
        logits = logits.masked_fill(~mask, float("-inf"))
        if pos is None:
            ce = nn.functional.cross_entropy(logits, y, reduction="none")
        else:
            ce = torch.logsumexp(logits, 1) - torch.logsumexp(logits.masked_fill(~pos, float("-inf")), 1)
        loss = c * (w * ce).sum() + 0.5 * (lin.weight**2).sum()
        if off is not None:
            loss = loss + 0.5 * ((lin.bias**2).sum() + (gain - 1) ** 2)
        loss.backward()
        return loss

    opt.step(closure)
    seen = (mask if pos is None else pos).any(0)
    with torch.no_grad():
        weight = (lin.weight * seen[:, None]).numpy().astype(np.float64)
        bias = torch.where(seen, lin.bias, torch.zeros(())).numpy().astype(np.float64)
    return weight, bias, float(gain.item())


def balanced_weights(labels: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Every group (corpus) weighs the same and, inside it, every class; the weights sum to ``len(labels)``."""
    groups = np.zeros(len(labels), int) if groups is None else np.asarray(groups)
    w = np.zeros(len(labels))
    names = np.unique(groups)
    for g in names:
        classes = np.unique(labels[groups == g])
        for k in classes:
            m = (groups == g) & (labels == k)
            w[m] = 1.0 / (len(names) * len(classes) * m.sum())
    return w * len(labels)


@dataclass
class VoiceProfile:
    """A fitted profile: the correction for the classes it saw, and what it was fitted on."""

    classes: tuple[str, ...]
    weight: np.ndarray  # (len(classes), n_features)
    bias: np.ndarray  # (len(classes),)
    gain: float
    model_id: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.meta.get("name", "profile"))

    def to_dict(self) -> dict[str, Any]:
        """What a result says of the profile it was read with."""
        return {"name": self.name, "classes": list(self.classes), "clips": self.meta.get("clips"),
                "speakers": self.meta.get("speakers"), "labels_file": self.meta.get("labels_file"),
                "created": self.meta.get("created")}

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        torch.save({"format": PROFILE_FORMAT, "classes": list(self.classes), "weight": torch.from_numpy(self.weight),
                    "bias": torch.from_numpy(self.bias), "gain": self.gain, "model_id": self.model_id,
                    "meta": json.dumps(self.meta)}, buf)
        return buf.getvalue()

    def save(self, path: str | Path) -> None:
        Path(path).write_bytes(self.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "profile") -> VoiceProfile:
        """Read a profile (weights only: a profile file cannot run code); MediaError if it is not one."""
        try:
            d = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
            prof = cls(tuple(d["classes"]), d["weight"].double().numpy(), d["bias"].double().numpy(), float(d["gain"]),
                       str(d["model_id"]), json.loads(d["meta"]))
            ok = d.get("format") == PROFILE_FORMAT and set(prof.classes) <= set(EMOTIONS)
            ok = ok and prof.weight.shape[0] == prof.bias.shape[0] == len(prof.classes)
        except Exception:
            ok = False
        if not ok:
            raise MediaError(f"{source}: this is not a profile made by `adapt` or the 'Your data' page.")
        return prof

    @classmethod
    def load(cls, path: str | Path) -> VoiceProfile:
        path = Path(path)
        if not path.is_file():
            raise MediaError(f"{path.name}: the profile file does not exist.")
        return cls.from_bytes(path.read_bytes(), path.name)


def model_id(meta: dict[str, Any]) -> str:
    """The identity of a loaded voice ensemble: the hashes of its two checkpoints."""
    return f"{meta.get('finetuned', {}).get('sha256', '')[:16]}:{meta.get('sha256', '')[:16]}"


class ProfiledVoice(nn.Module):
    """The shipped ensemble with a profile's correction; returns log-probabilities (temperature 1)."""

    accepts_baseline = True

    def __init__(self, ensemble: VoiceEnsemble, temperature: float, profile: VoiceProfile):
        super().__init__()
        self.ensemble, self.temperature, self.gain = ensemble, temperature, profile.gain
        device = next(ensemble.parameters()).device
        self.register_buffer("seen", torch.tensor([EMOTIONS.index(c) for c in profile.classes], device=device))
        self.register_buffer("weight", torch.from_numpy(profile.weight).float().to(device))
        self.register_buffer("bias", torch.from_numpy(profile.bias).float().to(device))

    @property
    def cfg(self):
        return self.ensemble.cfg

    def forward(self, mel: torch.Tensor, n_frames: torch.Tensor | None = None,
                baseline: torch.Tensor | None = None) -> torch.Tensor:
        logits, f = self.ensemble.forward_with_features(mel, n_frames, baseline)
        head = self.ensemble.probe.head
        z = (self.ensemble.probe.head_input(f) - head.mean) / head.scale
        return adapted_logprobs(torch.log_softmax(logits / self.temperature, -1), z,
                                self.seen, self.weight, self.bias, self.gain)


def adapted_logprobs(logp: torch.Tensor, z: torch.Tensor, seen: torch.Tensor, weight: torch.Tensor,
                     bias: torch.Tensor, gain: float) -> torch.Tensor:
    """Redistribute the probability of the ``seen`` classes by the profile; the others keep theirs."""
    logp = logp.to(weight.dtype)  # in float32 also under autocast (LIME's bfloat16 batches)
    s = gain * logp[:, seen] + z.to(weight.dtype) @ weight.T + bias
    out = logp.clone()
    out[:, seen] = torch.log_softmax(s, -1) + torch.logsumexp(logp[:, seen], -1, keepdim=True)
    return out


def fit_profile(logp: np.ndarray, z: np.ndarray, labels: np.ndarray, model: str, meta: dict[str, Any],
                c: float = PROFILE_C) -> VoiceProfile:
    """A profile from clip-level log-probabilities of the shipped model, standardised features and labels
    (indices into EMOTIONS). Needs clips of at least two emotions; classes are balanced."""
    present = sorted(set(int(k) for k in labels))
    if len(present) < 2:
        raise ValueError("a profile needs labelled clips of at least two emotions")
    idx = np.array(present)
    remap = {k: i for i, k in enumerate(present)}
    y = np.array([remap[int(k)] for k in labels])
    w, b, g = fit_softmax(z, y, np.ones((len(y), len(idx)), bool), balanced_weights(y), c, logp[:, idx])
    counts = {EMOTIONS[k]: int((labels == k).sum()) for k in present}
    return VoiceProfile(tuple(EMOTIONS[k] for k in present), w, b, g, model, meta | {"clips": counts})


def profiled_model(voice: LoadedModel, profile: VoiceProfile) -> LoadedModel:
    """The loaded voice model with ``profile`` applied; MediaError when the profile was fitted for another model."""
    if not isinstance(voice.model, VoiceEnsemble):
        raise MediaError("profiles need the shipped voice ensemble (weights/voice.pt and weights/voice_probe.pt).")
    if profile.model_id != model_id(voice.meta):
        raise MediaError(f"{profile.name}: this profile was fitted for another version of the voice model; fit it "
                         "again with `adapt` or on the 'Your data' page.")
    net = ProfiledVoice(voice.model, voice.temperature, profile).eval()
    return LoadedModel("voice", net, voice.meta | {"temperature": 1.0, "profile": profile.to_dict()})
