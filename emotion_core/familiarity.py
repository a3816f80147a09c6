"""How familiar a recording's voice is to the voice model, and the confidence that follows from it.

Why: measured one corpus out, the voice model is as sure of itself on speech from a corpus it never heard
as on RAVDESS, while it is right far less often. The recording setting dominates the frozen encoder's
features, so where a recording's features lie says whether it is like the recordings the model reads well
(RAVDESS's North-American studio speech: 78 % right among eight emotions for new actors) or not (new speakers
of the other training corpora 50-57 %, a corpus it never heard 25-41 %). Two signals:

- **inside**: how far its features lie from those recordings' *within* their main directions of variation,
  in units of each direction's spread (log of the mean squared Mahalanobis distance over the principal
  components);
- **outside**: how much of its features those directions cannot explain at all (log mean squared residual).

A logistic map, fitted on clips the model never heard (``training/voice_offcorpus.py``), turns them into the
**unfamiliarity** ``u`` (0-1), and the temperature moves from the familiar one to the off-corpus one in
proportion: ``T = t_familiar ** (1 - u) * t_unfamiliar ** u``. One temperature per recording: the whole
recording is or is not like the training data. For most real-world recordings the honest answer is
"unfamiliar": the app says so once and shows the lower confidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

SIGNALS = ("inside", "outside")
UNFAMILIAR_AT = 0.5
"""A recording counts as unlike the training data when its unfamiliarity is at least this."""

UNFAMILIAR_MESSAGE = ("This voice is unlike the studio recordings the voice model reads best (North-American "
                      "actors). On voices like this one (other languages, rooms, microphones, ways of speaking) it "
                      "was right far less often, so the confidence shown for the voice is lowered to match.")
"""Said once per recording, in words a therapist can use."""

FACE_UNFAMILIAR_MESSAGE = ("This face is unlike the faces the face model knows best (photos of faces looking at the "
                           "camera). On faces like it the model was right less often, so the confidence shown for "
                           "the face is lowered to match.")
"""Said once per recording when most of its faces are unfamiliar (``face_summary``)."""


def face_summary(unfamiliarity: np.ndarray) -> dict[str, float | bool | str | None]:
    """A recording's faces in one reading: how unfamiliar they are on average, the share of unfamiliar faces and
    whether to say so (each face already carries its own temperature; this is only what is said)."""
    u = np.asarray(unfamiliarity, np.float64)
    mean = float(u.mean())
    return {"mean_unfamiliarity": round(mean, 4), "share_unfamiliar": round(float((u >= UNFAMILIAR_AT).mean()), 4),
            "unfamiliar": mean >= UNFAMILIAR_AT, "message": FACE_UNFAMILIAR_MESSAGE if mean >= UNFAMILIAR_AT else None}


@dataclass(frozen=True)
class FamiliarityReading:
    """One recording's familiarity: its signals, its unfamiliarity (0-1) and the temperature it gives."""

    signals: tuple[float, float]
    unfamiliarity: float
    temperature: float

    @property
    def unfamiliar(self) -> bool:
        return self.unfamiliarity >= UNFAMILIAR_AT

    def to_dict(self) -> dict[str, float | bool | str | None]:
        return {**{k: round(v, 4) for k, v in zip(SIGNALS, self.signals, strict=True)},
                "unfamiliarity": round(self.unfamiliarity, 4), "temperature": round(self.temperature, 4),
                "unfamiliar": self.unfamiliar, "message": UNFAMILIAR_MESSAGE if self.unfamiliar else None}


class Familiarity(nn.Module):
    """The training clips' feature model and the calibration map (module docstring)."""

    def __init__(self, n_features: int, n_components: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features, dtype=torch.float64))
        self.register_buffer("scale", torch.ones(n_features, dtype=torch.float64))
        self.register_buffer("components", torch.zeros(n_components, n_features, dtype=torch.float64))
        self.register_buffer("variance", torch.ones(n_components, dtype=torch.float64))
        # the map: unfamiliarity = sigmoid(weights . signals + bias); then the two temperatures
        self.register_buffer("weights", torch.zeros(len(SIGNALS), dtype=torch.float64))
        self.register_buffer("calibration", torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64))

    def fit(self, x: np.ndarray) -> Familiarity:
        """The principal components of the (n, n_features) training clip features."""
        xd = torch.from_numpy(np.asarray(x, np.float64))
        mean, scale = xd.mean(0), xd.std(0)
        scale[scale == 0] = 1.0
        z = (xd - mean) / scale
        k = self.components.shape[0]
        with torch.random.fork_rng():  # randomised SVD (the top components only), repeatable
            torch.manual_seed(0)
            _, s, v = torch.svd_lowrank(z, q=min(k + 16, *z.shape), niter=6, M=None)
        with torch.no_grad():
            self.mean.copy_(mean)
            self.scale.copy_(scale)
            self.components.copy_(v[:, :k].T)
            self.variance.copy_((s[:k] ** 2 / len(z)).clamp_min(1e-12))
        return self

    def set_map(self, weights: np.ndarray, bias: float, t_familiar: float, t_unfamiliar: float) -> None:
        with torch.no_grad():
            self.weights.copy_(torch.as_tensor(np.asarray(weights, np.float64)))
            self.calibration.copy_(torch.tensor([bias, t_familiar, t_unfamiliar], dtype=torch.float64))

    @torch.no_grad()
    def distances(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """(n, 2): the inside and outside signals of each feature row (module docstring); higher = less familiar."""
        x = torch.as_tensor(x, dtype=torch.float64, device=self.mean.device)
        z = (x.reshape(-1, self.mean.shape[0]) - self.mean) / self.scale
        p = z @ self.components.T
        inside = (p**2 / self.variance).mean(1)
        outside = ((z - p @ self.components) ** 2).mean(1)
        return torch.stack([inside.log(), outside.log()], 1).cpu().numpy()

    def unfamiliarity(self, signals: np.ndarray) -> np.ndarray:
        """(n,) from (n, 2) signals."""
        logit = np.atleast_2d(signals) @ self.weights.cpu().numpy() + float(self.calibration[0])
        return 0.5 * (1.0 + np.tanh(logit / 2))  # the logistic function, without overflow

    def temperature(self, unfamiliarity: np.ndarray | float) -> np.ndarray:
        t_in, t_out = float(self.calibration[1]), float(self.calibration[2])
        u = np.asarray(unfamiliarity, np.float64)
        return t_in ** (1 - u) * t_out**u

    def read(self, features: np.ndarray | torch.Tensor) -> FamiliarityReading:
        """One recording's reading from its (n_features,) pooled clip features."""
        signals = self.distances(features)[0]
        u = float(self.unfamiliarity(signals)[0])
        return FamiliarityReading(tuple(float(v) for v in signals), u, float(self.temperature(u)))
