"""How familiar a recording's voice is to the voice model, and the confidence that follows from it.

Why: measured one corpus out, the voice model is as sure of itself on speech from a corpus it never heard
as on RAVDESS, while it is right far less often. The recording setting dominates the frozen encoder's
features, so how far a recording's features lie from the training clips' says whether the model is on
known ground. ``Familiarity`` holds a principal-component model of the training clips' standardised probe
features; a recording's **score** is the log of its mean squared distance outside the training subspace
(what the components cannot explain) and inside it (in units of each component's spread). A logistic map
fitted one corpus out (``training/voice_offcorpus.py``) turns the score into the chance that the recording
is *unlike* the training data, and the temperature moves from the in-corpus one to the off-corpus one in
proportion: ``T = t_familiar ** (1 - u) * t_unfamiliar ** u``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

UNFAMILIAR_AT = 0.5
"""A recording counts as unlike the training data when its unfamiliarity is at least this."""

UNFAMILIAR_MESSAGE = ("This voice is unlike the recordings the voice model learned from (another language, "
                      "room, microphone or way of speaking). Its voice readings are less reliable here, so the "
                      "confidence shown for the voice is lowered to match how often the model was right on such "
                      "recordings.")
"""Said once per recording, in words a therapist can use."""


@dataclass(frozen=True)
class FamiliarityReading:
    """One recording's familiarity: its score, its unfamiliarity (0-1) and the temperature it gives."""

    score: float
    unfamiliarity: float
    temperature: float

    @property
    def unfamiliar(self) -> bool:
        return self.unfamiliarity >= UNFAMILIAR_AT

    def to_dict(self) -> dict[str, float | bool | str | None]:
        return {"score": round(self.score, 4), "unfamiliarity": round(self.unfamiliarity, 4),
                "temperature": round(self.temperature, 4), "unfamiliar": self.unfamiliar,
                "message": UNFAMILIAR_MESSAGE if self.unfamiliar else None}


class Familiarity(nn.Module):
    """The training clips' feature model and the calibration map (module docstring)."""

    def __init__(self, n_features: int, n_components: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features, dtype=torch.float64))
        self.register_buffer("scale", torch.ones(n_features, dtype=torch.float64))
        self.register_buffer("components", torch.zeros(n_components, n_features, dtype=torch.float64))
        self.register_buffer("variance", torch.ones(n_components, dtype=torch.float64))
        # the calibration map: unfamiliarity = sigmoid((score - centre) / width); the two temperatures
        self.register_buffer("calibration", torch.tensor([0.0, 1.0, 1.0, 1.0], dtype=torch.float64))

    def fit(self, x: np.ndarray) -> Familiarity:
        """The principal components of the (n, n_features) training clip features."""
        xd = torch.from_numpy(np.asarray(x, np.float64))
        mean, scale = xd.mean(0), xd.std(0)
        scale[scale == 0] = 1.0
        z = (xd - mean) / scale
        k = self.components.shape[0]
        with torch.random.fork_rng():  # randomised SVD (the top components only), repeatable
            torch.manual_seed(0)
            _, s, v = torch.svd_lowrank(z, q=k + 16, niter=6, M=None)
        with torch.no_grad():
            self.mean.copy_(mean)
            self.scale.copy_(scale)
            self.components.copy_(v[:, :k].T)
            self.variance.copy_((s[:k] ** 2 / len(z)).clamp_min(1e-12))
        return self

    def set_calibration(self, centre: float, width: float, t_familiar: float, t_unfamiliar: float) -> None:
        with torch.no_grad():
            self.calibration.copy_(torch.tensor([centre, width, t_familiar, t_unfamiliar], dtype=torch.float64))

    @torch.no_grad()
    def score(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """(n,) log mean squared distance of each feature row from the training clips' subspace, the distance
        inside it in units of each component's spread; higher = less familiar."""
        z = (torch.as_tensor(x, dtype=torch.float64).reshape(-1, self.mean.shape[0]) - self.mean) / self.scale
        p = z @ self.components.T
        inside = (p**2 / self.variance).sum(1)
        outside = ((z - p @ self.components) ** 2).sum(1)
        return torch.log((inside + outside) / z.shape[1]).numpy()

    def unfamiliarity(self, score: np.ndarray | float) -> np.ndarray:
        centre, width = float(self.calibration[0]), float(self.calibration[1])
        return 1.0 / (1.0 + np.exp(-(np.asarray(score, np.float64) - centre) / width))

    def temperature(self, unfamiliarity: np.ndarray | float) -> np.ndarray:
        t_in, t_out = float(self.calibration[2]), float(self.calibration[3])
        u = np.asarray(unfamiliarity, np.float64)
        return t_in ** (1 - u) * t_out**u

    def read(self, features: np.ndarray | torch.Tensor) -> FamiliarityReading:
        """One recording's reading from its (n_features,) pooled clip features."""
        s = float(self.score(features)[0])
        u = float(self.unfamiliarity(s))
        return FamiliarityReading(s, u, float(self.temperature(u)))
