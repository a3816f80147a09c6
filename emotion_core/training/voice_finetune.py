"""Fine-tuning the voice model's first member across corpora, measured one corpus out (issue #13).

    python -m emotion_core train voice-finetune --data ../shared/data --out runs/finetune --device cuda

Why: a linear head on the frozen English Whisper encoder does not carry emotion across languages
(``voice_corpora.py``); the fine-tuned member transfers best, so it is the one to teach more voices.
The recipe is member 1's (``train_voice.VoiceTrainConfig``: Whisper tiny.en fine-tuned end to end,
attentive statistics pooling, speed perturbation, random crops, noise, SpecAugment) with three changes:

- every epoch draws its clips so that each corpus, and inside it each class, weighs the same;
- a clip's loss is the label-smoothed cross-entropy over the emotions *its corpus* labels
  (``corpora.CORPUS_CLASSES``): the other logits are left out of its softmax, not pushed down;
- every batch is heard in other rooms, channels, noise and microphones on the training device
  (``batch_augment.py``), each family with probability ``family_prob``.

Runs, each independent and resumable (so a GPU lease can run them side by side, and a run cut off
goes on from its last epoch): ``urdu-out``, ``turev-out``, ``ravdess-out`` (trained on the other two
corpora, tested on every clip of this one); ``fold0``-``fold4`` (RAVDESS actors 01-04 ... 17-20 held
out, everything else in training); ``final`` (all of it: the checkpoint that can ship). ``NAME:clean``
is the same run without the domain families (the ablation). A run writes ``OUT/NAME.csv``: its test
clips' probabilities (temperature 1) through the windowed path ``analyze`` uses; ``final`` writes
``OUT/final.pt``. Nothing is selected on a test corpus or actor: the epoch count is fixed.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..constants import EMOTIONS, SAMPLE_RATE
from ..devices import resolve_device
from ..inference import pool_voice
from ..models import VoiceConfig
from ..options import parse_overrides
from ..registry import save_checkpoint
from .augment import FAMILIES, ffmpeg_exe, rir_bank
from .batch_augment import BatchAugmenter
from .corpora import CORPUS_CLASSES, CORPUS_FOLDERS, Clip, corpus_mask, find_corpora, ravdess_folds
from .datasets import ACTOR_FOLDS, load_waveforms
from .train_voice import (
    VoiceTrainConfig,
    crop_batch,
    mel_batch_augmented,
    predict_items,
    pretrained_voice_net,
    train_net,
)

log = logging.getLogger(__name__)


@dataclass
class CorpusTrainConfig(VoiceTrainConfig):
    """Member 1's recipe (``VoiceTrainConfig``) with the settings of training across corpora."""

    lr_encoder: float = 1e-4
    epochs: int = 30
    samples_per_epoch: int = 1600
    """Clips drawn per epoch (balanced over corpora and classes, with replacement)."""
    family_prob: float = 0.25
    """Chance that each domain family (room, channel, noise, mic) is applied to a clip."""
    families: tuple[str, ...] = FAMILIES
    n_rirs: int = 200
    ravdess_share: float = 0.0
    """Share of each epoch drawn from RAVDESS when it is in training (the rest split equally between the
    other corpora); 0: every corpus the same."""


MODEL_DEFAULTS = {"pooling": "attn_stats"}
"""Member 1's model settings (the shipped ``voice.pt``)."""
RUNS = (*(f"{c}-out" for c in CORPUS_FOLDERS), *(f"fold{f}" for f in range(len(ACTOR_FOLDS))), "final")


def run_split(name: str, clips: list[Clip]) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) boolean masks over ``clips`` for run ``name`` (a ``:clean`` suffix does not change them)."""
    base = name.split(":")[0]
    corpus = np.array([c.corpus for c in clips])
    if base.endswith("-out") and base[:-4] in CORPUS_FOLDERS:
        test = corpus == base[:-4]
    elif base.startswith("fold") and base[4:].isdigit() and int(base[4:]) < len(ACTOR_FOLDS):
        test = ravdess_folds(np.array([c.speaker for c in clips]), corpus) == int(base[4:])
    elif base == "final":
        test = np.zeros(len(clips), bool)
    else:
        raise ValueError(f"unknown run '{name}' (known: {', '.join(RUNS)}, each optionally with ':clean')")
    return ~test, test


def balanced_draw(clips: list[Clip], rows: np.ndarray, n: int, ravdess_share: float = 0.0):
    """A function drawing ``n`` of ``rows`` per epoch, every class inside a corpus equally likely; every corpus
    the same share, or RAVDESS ``ravdess_share`` of the draws (when it is among ``rows``)."""
    keys = [(clips[i].corpus, clips[i].emotion) for i in rows]
    corpora = sorted({c for c, _ in keys})
    share = {c: 1 / len(corpora) for c in corpora}
    if ravdess_share > 0 and "ravdess" in share and len(corpora) > 1:
        share = {c: ravdess_share if c == "ravdess" else (1 - ravdess_share) / (len(corpora) - 1) for c in corpora}
    classes = {c: {e for cc, e in keys if cc == c} for c in corpora}
    count = {k: keys.count(k) for k in set(keys)}
    w = np.array([share[c] / (len(classes[c]) * count[(c, e)]) for c, e in keys])
    w /= w.sum()
    return lambda rng: rng.choice(rows, size=n, replace=True, p=w)


def masked_loss(logits: torch.Tensor, labels: torch.Tensor, allowed: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Label-smoothed cross-entropy whose softmax, per row, runs over that row's allowed classes only."""
    logp = torch.log_softmax(logits.masked_fill(~allowed, float("-inf")), -1)
    nll = -logp.gather(1, labels[:, None])[:, 0]
    smooth = -(logp.masked_fill(~allowed, 0.0).sum(-1) / allowed.sum(-1))
    return ((1 - smoothing) * nll + smoothing * smooth).mean()


def load_rirs(cfg: CorpusTrainConfig, cache: Path) -> np.ndarray | None:
    """The bank of room impulse responses (simulated once, then read from ``cache``)."""
    if "room" not in cfg.families:
        return None
    if cache.exists():
        bank = np.load(cache)
        if len(bank) >= cfg.n_rirs:
            return bank[: cfg.n_rirs]
    bank = rir_bank(cfg.n_rirs, cfg.seed)
    np.save(cache, bank.astype(np.float16))
    return bank


def load_audio(clips: list[Clip], speeds: tuple[float, ...], cache: Path) -> list[list[np.ndarray]]:
    """Every clip at every speed, decoded once and cached (parallel runs read the cache)."""
    key = {"files": [str(c.path) for c in clips], "speeds": list(speeds)}
    if cache.exists():
        saved = torch.load(cache, weights_only=False)
        if saved["key"] == key:
            return saved["waves"]
    t0 = time.time()
    waves = load_waveforms(clips, speeds)
    tmp = cache.with_suffix(".tmp")
    torch.save({"key": key, "waves": waves}, tmp)
    tmp.replace(cache)
    log.info("decoded %d clips in %.0f s", len(clips), time.time() - t0)
    return waves


def train_run(name: str, clips: list[Clip], waves: list[list[np.ndarray]], cfg: CorpusTrainConfig,
              model_over: dict, rirs: np.ndarray | None, device: torch.device, out: Path,
              whisper: str | None) -> dict:
    """Train one run and write its test predictions (and, for ``final``, its checkpoint)."""
    train, test = run_split(name, clips)
    clean = name.endswith(":clean")
    labels = np.array([c.emotion for c in clips])
    allowed = torch.from_numpy(corpus_mask(np.array([c.corpus for c in clips]))).to(device)
    y = torch.from_numpy(labels).to(device)
    augmenter = BatchAugmenter(None if clean or rirs is None else torch.from_numpy(rirs.astype(np.float32)),
                               0.0 if clean else cfg.family_prob, () if clean else cfg.families, cfg.seed)

    def make(waves_, idx, cfg_, rng, device_):
        xs, lengths = crop_batch(waves_, idx, cfg_, rng, pad_to_longest=True)
        audio = augmenter(torch.from_numpy(xs).to(device_), torch.tensor(lengths, device=device_))
        return mel_batch_augmented(audio, lengths, cfg_, rng)

    torch.manual_seed(cfg.seed)
    t0 = time.time()
    net = train_net(pretrained_voice_net(whisper, **{**MODEL_DEFAULTS, **model_over}), waves, labels,
                    np.flatnonzero(train), cfg, device, name,
                    make=make, loss_fn=lambda logits, idx: masked_loss(logits, y[idx], allowed[idx], cfg.label_smoothing),
                    draw=balanced_draw(clips, np.flatnonzero(train), cfg.samples_per_epoch, cfg.ravdess_share),
                    state_path=out / f"{name.replace(':', '_')}.state.pt")
    minutes = (time.time() - t0) / 60
    speed1 = cfg.speeds.index(1.0)
    rows = np.flatnonzero(test)
    probs = np.stack([pool_voice(w) for w in predict_items(net, clips, waves, rows, speed1)]) if len(rows) else None
    info = {"run": name, "train_clips": int(train.sum()), "test_clips": int(len(rows)),
            "train_corpora": sorted({clips[i].corpus for i in np.flatnonzero(train)}),
            "train_minutes": round(minutes, 2), "device": torch.cuda.get_device_name(device) if device.type == "cuda"
            else "cpu", "train_config": asdict(cfg), "model": {**MODEL_DEFAULTS, **model_over}}
    if probs is not None:
        write_predictions(out / f"{name.replace(':', '_')}.csv", [clips[i] for i in rows], probs)
        info["accuracy_8way"] = float((probs.argmax(1) == labels[rows]).mean())
    if name == "final":
        counts = {c: int(sum(k.corpus == c for k in clips)) for c in CORPUS_FOLDERS}
        meta = {"trained_on": "RAVDESS speech actors 01-20 ({ravdess} clips), URDU ({urdu}), TurEV-DB ({turev})"
                              .format(**counts),
                "corpus_classes": CORPUS_CLASSES, "train_config": asdict(cfg), "temperature": 1.0,
                "licence": "non-commercial research use (RAVDESS CC BY-NC-SA 4.0, URDU research only, "
                           "TurEV-DB CC BY-NC-ND 4.0)",
                "backbone": "Whisper tiny.en encoder (MIT), fine-tuned"}
        info["sha256"] = save_checkpoint(out / "final.pt", "voice", net.cpu(), meta, update_manifest=False)
    (out / f"{name.replace(':', '_')}.json").write_text(json.dumps(info, indent=2) + "\n")
    log.info("[%s] done in %.1f min%s", name, minutes,
             f", 8-way accuracy {info['accuracy_8way']:.3f}" if "accuracy_8way" in info else "")
    return info


def clip_key(path: str | Path) -> str:
    """A clip's name without its folders and suffix: the FLAC originals and their Opus copies share it."""
    return Path(path).stem


def write_predictions(path: Path, clips: list[Clip], probs: np.ndarray) -> None:
    import pandas as pd

    df = pd.DataFrame({"file": [clip_key(c.path) for c in clips], "corpus": [c.corpus for c in clips],
                       "speaker": [c.speaker for c in clips], "true": [c.label for c in clips]})
    df[list(EMOTIONS)] = probs
    df.to_csv(path, index=False, float_format="%.6g")


def compact_copy(src: Path, dst: Path, bitrate: str = "32k") -> int:
    """Copy the corpora under ``src`` to ``dst`` as Opus (same folders and names, ``.ogg``): a 4x smaller
    copy that fits a GPU lease's transfer limit. Lossy: figures from it say so."""
    n = 0
    for corpus in CORPUS_FOLDERS:
        for c in find_corpora(src, (corpus,)):
            target = dst / c.path.relative_to(src).with_suffix(".ogg")
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(c.path), "-c:a", "libopus", "-b:a", bitrate,
                            "-ar", str(SAMPLE_RATE), "-ac", "1", str(target)], check=True)
            n += 1
    return n


def main(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if getattr(args, "pack", None):
        n = compact_copy(Path(args.data), Path(args.pack))
        log.info("wrote %d Opus files under %s", n, args.pack)
        return 0
    device = resolve_device(args.device)
    train_over, model_over = parse_overrides(getattr(args, "set", None), CorpusTrainConfig, VoiceConfig)
    cfg = CorpusTrainConfig(**{"seed": args.seed, **train_over})
    if args.epochs:
        cfg.epochs = args.epochs
    if args.quick:
        cfg.batch_size, cfg.samples_per_epoch, cfg.n_rirs = 4, 8, 4
    names = RUNS if args.runs == "all" else [] if args.runs == "none" else args.runs.split(",")
    clips = find_corpora(args.data)
    for name in names:
        run_split(name, clips)  # refuse an unknown run before any audio is read
    waves = load_audio(clips, cfg.speeds, out / ("waves_quick.pt" if args.quick else "waves.pt"))
    rirs = load_rirs(cfg, out / "rirs.npy")
    for name in names:
        if (out / f"{name.replace(':', '_')}.json").exists():
            log.info("[%s] already done", name)
            continue
        train_run(name, clips, waves, cfg, model_over, rirs, device, out, args.whisper)
    return 0
