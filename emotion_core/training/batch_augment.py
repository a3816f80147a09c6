"""Domain augmentation of a whole training batch on the training device: rooms, channels, noise, microphones.

Why beside ``augment.py``: fine-tuning the encoder hears every clip dozens of times, so each batch
needs fresh rooms, channels and noise at training speed, on the GPU, without a library call or an
ffmpeg process per clip. The families and their ranges follow ``augment.py``; what differs:

- ``room``: the impulse responses come from a bank simulated once by ``augment.rir_bank``
  (pyroomacoustics' image-source method, the same rooms as ``augment.room``), convolved by FFT.
- ``channel``: a telephone (300-3400 Hz band, then 8-bit mu-law, the G.711 codec of the telephone
  network, quantised at 16 kHz, so its noise is not band-limited) or a video call (80-7000 Hz band,
  1-5 % of its 20 ms packets lost and not concealed).
  The low-bitrate codecs of ``augment.channel`` (AMR-NB, Opus, MP3) need ffmpeg and stay on the CPU.
- ``noise``: coloured noise (spectral slope -6 to +6 dB per octave: brown to violet) or the babble of
  2-4 other clips of the same batch, at 5-25 dB signal-to-noise ratio over the clip's own samples.
- ``mic``: a smooth random equaliser (seven bands, +-8 dB, interpolated over log frequency) and a
  gain of -18 to +6 dB, clipped to full scale.

Each family is applied to each clip independently with probability ``p``; rows are zero-padded
clips whose ``lengths`` say where the padding starts, and padding stays silent.
"""

from __future__ import annotations

import math

import torch

from ..constants import SAMPLE_RATE
from .augment import FAMILIES


def _uniform(n: int, lo: float, hi: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, device=device)


def _valid(lengths: torch.Tensor, t: int) -> torch.Tensor:
    return (torch.arange(t, device=lengths.device)[None, :] < lengths[:, None]).float()


def _freqs(t: int, device: torch.device) -> torch.Tensor:
    return torch.fft.rfftfreq(t, 1 / SAMPLE_RATE).to(device)


def _filter(x: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` through zero-phase filters given by their (rows, bins) magnitude ``gain``."""
    return torch.fft.irfft(torch.fft.rfft(x) * gain, n=x.shape[-1])


def _band(f: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """A band-pass magnitude response with 4th-order Butterworth-like skirts."""
    return 1 / torch.sqrt(1 + (lo / f.clamp_min(1.0)) ** 8) / torch.sqrt(1 + (f / hi) ** 8)


def _rms(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return torch.sqrt((x**2 * valid).sum(-1, keepdim=True) / valid.sum(-1, keepdim=True).clamp_min(1) + 1e-12)


def room(x: torch.Tensor, valid: torch.Tensor, rirs: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Rows reverberated by random impulse responses of the bank; peak level kept."""
    h = rirs[torch.randint(len(rirs), (len(x),), generator=g, device=x.device)]
    n = x.shape[-1] + h.shape[-1]
    y = torch.fft.irfft(torch.fft.rfft(x, n) * torch.fft.rfft(h, n), n)[:, : x.shape[-1]] * valid
    peak = x.abs().amax(-1, keepdim=True) / y.abs().amax(-1, keepdim=True).clamp_min(1e-9)
    return y * peak


def channel(x: torch.Tensor, valid: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Half the rows through a telephone (band + mu-law), half through a lossy video call."""
    b, t = x.shape
    f = _freqs(t, x.device)
    phone = torch.rand(b, generator=g, device=x.device) < 0.5
    y = _filter(x, torch.where(phone[:, None], _band(f, 300, 3400)[None], _band(f, 80, 7000)[None]))
    mu = 255.0
    law = torch.sign(y) * torch.log1p(mu * y.abs().clamp(max=1)) / math.log1p(mu)
    law = torch.round(law * 127.5) / 127.5
    decoded = torch.sign(law) * torch.expm1(law.abs() * math.log1p(mu)) / mu
    packet = SAMPLE_RATE // 50
    n_packets = -(-t // packet)
    loss = _uniform(b, 0.01, 0.05, g, x.device)[:, None]
    kept = (torch.rand(b, n_packets, generator=g, device=x.device) >= loss).float()
    kept = kept.repeat_interleave(packet, -1)[:, :t]
    return torch.where(phone[:, None], decoded, y * kept) * valid


def noise(x: torch.Tensor, valid: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Rows with coloured noise or babble of other rows, at 5-25 dB SNR."""
    b, t = x.shape
    f = _freqs(t, x.device)
    slope = _uniform(b, -6, 6, g, x.device)[:, None]  # dB per octave
    white = torch.randn(b, t, generator=g, device=x.device)
    coloured = _filter(white, (f.clamp_min(20.0)[None] / 1000) ** (slope / (20 * math.log10(2))))
    babble = torch.zeros_like(x)
    if b > 1:
        for _ in range(int(torch.randint(2, 5, (1,), generator=g, device=x.device))):
            shift = int(torch.randint(1, b, (1,), generator=g, device=x.device))
            other = x.roll(shift, 0)
            babble += other / _rms(other, valid.roll(shift, 0))
    use_babble = (torch.rand(b, generator=g, device=x.device) < 0.5)[:, None] & (babble.abs().sum(-1, keepdim=True) > 0)
    n = torch.where(use_babble, babble, coloured) * valid
    snr = _uniform(b, 5, 25, g, x.device)[:, None]
    return x + n * _rms(x, valid) / (_rms(n, valid) * 10 ** (snr / 20))


def mic(x: torch.Tensor, valid: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Rows through a random smooth equaliser and gain."""
    b, t = x.shape
    f = _freqs(t, x.device).clamp_min(50.0)
    centres = torch.logspace(math.log10(100), math.log10(6400), 7, device=x.device)
    gains_db = _uniform(b * 7, -8, 8, g, x.device).view(b, 7)
    pos = ((f.log() - centres[0].log()) / (centres[1].log() - centres[0].log())).clamp(0, 6)
    lo = pos.floor().long().clamp(max=5)
    frac = pos - lo
    curve = gains_db[:, lo] * (1 - frac) + gains_db[:, lo + 1] * frac
    gain_db = _uniform(b, -18, 6, g, x.device)[:, None]
    return (_filter(x, 10 ** (curve / 20)) * 10 ** (gain_db / 20)).clamp(-1, 1) * valid


class BatchAugmenter:
    """Applies each family in ``families`` to each row with probability ``p`` (in a random order per batch)."""

    def __init__(self, rirs: torch.Tensor | None, p: float = 0.25, families: tuple[str, ...] = FAMILIES,
                 seed: int = 0):
        unknown = set(families) - set(FAMILIES)
        if unknown:
            raise ValueError(f"unknown augmentation families {sorted(unknown)} (known: {', '.join(FAMILIES)})")
        if "room" in families and rirs is None:
            raise ValueError("the room family needs a bank of impulse responses")
        self.rirs, self.p, self.families, self.seed = rirs, p, tuple(families), seed
        self._g: torch.Generator | None = None

    def __call__(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if not self.families or self.p <= 0:
            return x
        if self._g is None or self._g.device != x.device:
            self._g = torch.Generator(device=x.device).manual_seed(self.seed)
        g = self._g
        valid = _valid(lengths, x.shape[-1])
        order = torch.randperm(len(self.families), generator=g, device=x.device).tolist()
        for k in order:
            family = self.families[k]
            rows = torch.rand(len(x), generator=g, device=x.device) < self.p
            if not rows.any():
                continue
            sub, v = x[rows], valid[rows]
            if family == "room":
                y = room(sub, v, self.rirs.to(x.device), g)  # type: ignore[union-attr]
            else:
                y = {"channel": channel, "noise": noise, "mic": mic}[family](sub, v, g)
            x = x.clone()
            x[rows] = y
        return x
