"""Training and evaluation of the voice model on RAVDESS speech, speaker-independent.

Protocol: 5-fold cross-validation over actors 01-20, four whole actors per fold (ACTOR_FOLDS).
Every reported figure comes from out-of-fold predictions made with the same windowed inference
path that ``analyze`` uses. The shipped model is then trained on all twenty actors with the same
recipe (fixed epoch count: no test fold is ever used to stop or select).

Recipe: Whisper tiny.en encoder (pretrained, fine-tuned end to end) + learned layer mix +
attention pooling; augmentation by speed perturbation (0.9/1.0/1.1, precomputed), random 4 s
crops, additive noise at 10-30 dB SNR and SpecAugment; AdamW, warm-up + cosine schedule, label
smoothing. Ablations (``--ablation``): a frozen-encoder linear probe and a log-mel CNN from scratch.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..constants import EMOTIONS, HOP_LENGTH, SAMPLE_RATE, VOICE_WINDOW_S
from ..devices import resolve_device
from ..features import log_mel_torch
from ..inference import VoiceWindow, pool_voice, predict_voice_windows
from ..metrics import fit_temperature, fold_accuracy, nll, summarize
from ..models import VoiceConfig, VoiceNet
from ..options import parse_overrides
from ..registry import FILES, REPORTS_DIR, VOICE_OOF, WEIGHTS_DIR, LoadedModel, load_model, save_checkpoint
from ..whisper import WhisperEncoder
from .datasets import ACTOR_FOLDS, RavdessItem, find_ravdess, fold_of, load_waveforms
from .train_probe import BASELINE_EMOTIONS, build_probe, dataset_features, make_classifier, predict_proba

log = logging.getLogger(__name__)


@dataclass
class VoiceTrainConfig:
    epochs: int = 30
    batch_size: int = 32
    lr_encoder: float = 5e-5
    lr_head: float = 1e-3
    weight_decay: float = 0.01
    warmup_frac: float = 0.1
    label_smoothing: float = 0.1
    crop_s: float = VOICE_WINDOW_S
    speeds: tuple[float, ...] = (0.9, 1.0, 1.1)
    noise_prob: float = 0.5
    snr_db: tuple[float, float] = (10.0, 30.0)
    freq_masks: int = 2
    freq_mask_width: int = 8
    time_masks: int = 2
    time_mask_width: int = 30
    seed: int = 0


# --- data ------------------------------------------------------------------------------------
def crop_batch(waves: list[list[np.ndarray]], idx: np.ndarray, cfg: VoiceTrainConfig, rng: np.random.Generator,
               pad_to_longest: bool = False) -> tuple[np.ndarray, list[int]]:
    """Random ``crop_s`` crops of items ``idx`` (a random speed each), with additive noise; zero-padded
    to ``crop_s`` or, with ``pad_to_longest``, to the longest crop (short clips cost less)."""
    crop = int(cfg.crop_s * SAMPLE_RATE)
    width = crop
    if pad_to_longest:
        width = min(crop, max(len(w) for i in idx for w in waves[i]))
    xs, lengths = np.zeros((len(idx), width), np.float32), []
    for row, i in enumerate(idx):
        y = waves[i][rng.integers(len(waves[i]))]
        if len(y) > width:
            s = rng.integers(len(y) - width + 1)
            y = y[s: s + width]
        xs[row, : len(y)] = y
        lengths.append(len(y))
        if rng.random() < cfg.noise_prob:
            rms = np.sqrt(np.mean(y**2) + 1e-12)
            snr = rng.uniform(*cfg.snr_db)
            xs[row, : len(y)] += rng.standard_normal(len(y)).astype(np.float32) * rms / 10 ** (snr / 20)
    return xs, lengths


def mel_batch_augmented(audio: torch.Tensor, lengths: list[int], cfg: VoiceTrainConfig,
                        rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-mels of a (batch, samples) tensor with SpecAugment, and their valid frame counts."""
    mel = log_mel_torch(audio)
    device = mel.device
    frames = [min(mel.shape[-1], ln // HOP_LENGTH) for ln in lengths]
    n = torch.tensor(frames, device=device)
    for row in range(len(lengths)):  # SpecAugment (frame counts from the host list: no device sync per row)
        floor = mel[row].min()
        for _ in range(cfg.freq_masks):
            w = int(rng.integers(0, cfg.freq_mask_width + 1))
            f0 = int(rng.integers(0, mel.shape[1] - w + 1))
            mel[row, f0: f0 + w, :] = floor
        for _ in range(cfg.time_masks):
            w = int(rng.integers(0, cfg.time_mask_width + 1))
            t0 = int(rng.integers(0, max(1, frames[row] - w + 1)))
            mel[row, :, t0: t0 + w] = floor
    return mel, n


def make_batch(waves: list[list[np.ndarray]], idx: np.ndarray, cfg: VoiceTrainConfig, rng: np.random.Generator,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented log-mels (batch, n_mels, frames) and valid frame counts for items ``idx``."""
    xs, lengths = crop_batch(waves, idx, cfg, rng)
    return mel_batch_augmented(torch.from_numpy(xs).to(device), lengths, cfg, rng)


# --- models ------------------------------------------------------------------------------------
def pretrained_voice_net(whisper: str | None, **overrides: object) -> VoiceNet:
    """A VoiceNet whose encoder starts from Whisper tiny.en (CT2 model.bin or an extracted .pt)."""
    if whisper and whisper.endswith(".pt"):
        sd = {k: v.float() for k, v in torch.load(whisper, map_location="cpu", weights_only=True).items()}
        net = VoiceNet(VoiceConfig(**overrides))  # type: ignore[arg-type]
    else:
        enc = WhisperEncoder.from_ct2(whisper)
        sd = enc.state_dict()
        net = VoiceNet(VoiceConfig(encoder=enc.cfg, **overrides))  # type: ignore[arg-type]
    net.encoder.load_state_dict(sd)
    return net


class MelCNN(nn.Module):
    """Ablation baseline: a small 2-D CNN on the log-mel, trained from scratch."""

    def __init__(self, n_classes: int = len(EMOTIONS)):
        super().__init__()
        chans = [1, 32, 64, 128, 256]
        layers: list[nn.Module] = []
        for a, b in zip(chans[:-1], chans[1:], strict=True):
            layers += [nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(), nn.MaxPool2d(2)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(256, n_classes))

    def forward(self, mel: torch.Tensor, n_frames: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.body(mel[:, None]).mean(dim=(2, 3)))


def train_net(net: nn.Module, waves: list[list[np.ndarray]], labels: np.ndarray, train_idx: np.ndarray,
              cfg: VoiceTrainConfig, device: torch.device, tag: str, *,
              make: Callable[..., tuple[torch.Tensor, torch.Tensor]] = make_batch,
              loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
              draw: Callable[[np.random.Generator], np.ndarray] | None = None,
              state_path: Path | None = None) -> nn.Module:
    """Fine-tune ``net`` on items ``train_idx``: AdamW, warm-up + cosine, ``cfg.epochs`` fixed.

    ``make`` builds a batch, ``loss_fn(logits, idx)`` scores it (default: cross-entropy with label
    smoothing), ``draw(rng)`` gives an epoch's items in order (default: a permutation of
    ``train_idx``). With ``state_path`` the run saves itself after every epoch and resumes from there.
    """
    net.to(device).train()
    enc_params = [p for n, p in net.named_parameters() if n.startswith("encoder.")]
    other = [p for n, p in net.named_parameters() if not n.startswith("encoder.")]
    groups = [{"params": other, "lr": cfg.lr_head}]
    if enc_params:
        groups.append({"params": enc_params, "lr": cfg.lr_encoder})
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    draw = draw or (lambda r: r.permutation(train_idx))
    rng = np.random.default_rng(cfg.seed)
    steps_per_epoch = math.ceil(len(draw(np.random.default_rng(cfg.seed))) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    warm = max(1, int(cfg.warmup_frac * total))
    base = [g["lr"] for g in opt.param_groups]
    y_all = torch.from_numpy(labels).to(device)
    if loss_fn is None:
        def loss_fn(logits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(logits, y_all[idx], label_smoothing=cfg.label_smoothing)
    step, first = 0, 0
    if state_path is not None and state_path.exists():
        st = torch.load(state_path, map_location=device, weights_only=False)
        net.load_state_dict(st["net"])
        opt.load_state_dict(st["opt"])
        rng.bit_generator.state = st["rng"]
        step, first = st["step"], st["epoch"]
        log.info("[%s] resumed after epoch %d", tag, first)
    t0 = time.time()
    for epoch in range(first, cfg.epochs):
        order = draw(rng)
        losses = []
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch_size: (b + 1) * cfg.batch_size]
            mel, n = make(waves, idx, cfg, rng, device)
            scale = step / warm if step < warm else 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))
            for g, lr in zip(opt.param_groups, base, strict=True):
                g["lr"] = lr * scale
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = net(mel, n)
            loss = loss_fn(logits.float(), torch.from_numpy(np.asarray(idx)).to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            losses.append(loss.item())
            step += 1
        if epoch == cfg.epochs - 1 or epoch % 5 == 0:
            log.info("[%s] epoch %d/%d loss %.3f (%.0fs)", tag, epoch + 1, cfg.epochs, np.mean(losses), time.time() - t0)
        if state_path is not None:
            torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "rng": rng.bit_generator.state,
                        "step": step, "epoch": epoch + 1}, state_path)
    return net.eval()


def predict_items(net: nn.Module, items: list[RavdessItem], waves: list[list[np.ndarray]], idx: np.ndarray,
                  speed_index: int) -> list[list[VoiceWindow]]:
    """Windowed predictions of clips ``idx`` through the same path ``analyze`` uses."""
    lm = LoadedModel("voice", net)
    return [predict_voice_windows(lm, waves[i][speed_index]) or
            predict_voice_windows(lm, waves[i][speed_index], [(0.0, len(waves[i][speed_index]) / SAMPLE_RATE, 1.0)])
            for i in idx]


# --- entry point -------------------------------------------------------------------------------
def main(args: argparse.Namespace) -> int:
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    device = resolve_device(args.device)
    train_over, model_over = parse_overrides(getattr(args, "set", None), VoiceTrainConfig, VoiceConfig)
    cfg = VoiceTrainConfig(**{"seed": args.seed, **train_over})
    if args.epochs:
        cfg.epochs = args.epochs
    if args.quick:
        cfg.batch_size = 4
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    reports = Path(getattr(args, "reports", None) or REPORTS_DIR)
    weights = Path(args.weights or WEIGHTS_DIR)

    items = [it for it in find_ravdess(args.data) if fold_of(it.actor) is not None]
    labels = np.array([it.emotion for it in items])
    folds = np.array([fold_of(it.actor) for it in items])
    log.info("RAVDESS: %d clips, actors %s; device %s", len(items), sorted({it.actor for it in items}), device)
    t0 = time.time()
    waves = load_waveforms(items, cfg.speeds)
    speed1 = cfg.speeds.index(1.0)
    log.info("audio loaded in %.0fs", time.time() - t0)

    run_folds = (list(range(len(ACTOR_FOLDS))) if args.folds == "all" else
                 [] if args.folds == "none" else [int(f) for f in args.folds.split(",")])
    results: dict = {"protocol": "5-fold CV by actor over actors 01-20: " +
                     ", ".join("-".join(f"{a:02d}" for a in (f[0], f[-1])) for f in ACTOR_FOLDS),
                     "train_config": asdict(cfg), "device": str(device)}

    oof_windows: dict[int, list[VoiceWindow]] = {}
    fold_acc = []
    for f in [] if getattr(args, "ablation_only", False) else run_folds:
        tr, te = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
        torch.manual_seed(args.seed)
        net = train_net(pretrained_voice_net(args.whisper, **model_over), waves, labels, tr, cfg, device, f"fold {f}")
        preds = predict_items(net, items, waves, te, speed1)
        oof_windows.update(zip(te.tolist(), preds, strict=True))
        acc = float((np.stack([pool_voice(w) for w in preds]).argmax(1) == labels[te]).mean())
        fold_acc.append(acc)
        log.info("fold %d (actors %s): accuracy %.3f", f, ACTOR_FOLDS[f], acc)
        del net

    temperature = 1.0
    if oof_windows:
        idx = np.array(sorted(oof_windows))
        y = labels[idx]
        temperature = fit_temperature(lambda t: nll(y, np.stack([pool_voice(oof_windows[i], t) for i in idx])))
        raw = np.stack([pool_voice(oof_windows[i]) for i in idx])
        cal = np.stack([pool_voice(oof_windows[i], temperature) for i in idx])
        summary = summarize(y, cal, EMOTIONS)
        summary["ece_before_calibration"] = summarize(y, raw, EMOTIONS)["ece"]
        summary["fold_accuracy"] = fold_acc
        summary["mean_fold_accuracy"] = float(np.mean(fold_acc))
        summary["temperature"] = temperature
        results["cv"] = summary
        log.info("CV mean fold accuracy %.3f, pooled %.3f, macro F1 %.3f, T=%.2f, ECE %.3f -> %.3f",
                 np.mean(fold_acc), summary["accuracy"], summary["macro_f1"], temperature,
                 summary["ece_before_calibration"], summary["ece"])
        reports.mkdir(parents=True, exist_ok=True)
        with open(reports / "voice_oof.csv", "w", newline="") as fh:
            wr = csv.writer(fh)
            wr.writerow(["file", "actor", "fold", "intensity", "statement", "true", "pred", *EMOTIONS])
            for i, p in zip(idx, cal, strict=True):
                it = items[i]
                wr.writerow([it.path.name, it.actor, folds[i] + 1, it.intensity, it.statement, it.label,
                             EMOTIONS[int(p.argmax())], *(f"{v:.5f}" for v in p)])

    if args.final:
        torch.manual_seed(args.seed)
        net = train_net(pretrained_voice_net(args.whisper, **model_over), waves, labels, np.arange(len(items)), cfg,
                        device, "final")
        meta = {"trained_on": "RAVDESS speech, actors " + ",".join(f"{a:02d}" for a in sorted({it.actor for it in items})),
                "temperature": temperature, "cv": results.get("cv", {}).get("mean_fold_accuracy"),
                "train_config": asdict(cfg), "licence": "CC BY-NC-SA 4.0 (inherited from RAVDESS)",
                "backbone": "Whisper tiny.en encoder (MIT), fine-tuned"}
        digest = save_checkpoint(weights / FILES["voice"], "voice", net.cpu(), meta)
        results["checkpoint_sha256"] = digest
        log.info("saved %s (%s)", weights / FILES["voice"], digest[:12])
    if not getattr(args, "ablation_only", False):  # an ablation-only run merges into the report below
        _dump(results, out, reports, args.quick)

    results["model_config"] = model_over
    if (getattr(args, "ablation", False) or getattr(args, "ablation_only", False)) and run_folds:
        ablation: dict = {}
        command = "python -m emotion_core train voice --data RAVDESS_DIR --ablation-only --no-final"
        feats = dataset_features(build_probe(args.whisper), items)  # the shipped member 2, alone
        p_probe = np.zeros((len(items), len(EMOTIONS)))
        for f in run_folds:
            tr, te = folds != f, folds == f
            p_probe[te] = predict_proba(make_classifier().fit(feats[tr], labels[tr]), feats[te])
        accs = fold_accuracy(labels, p_probe, folds, run_folds)
        ablation["frozen_probe"] = {"fold_accuracy": accs, "mean_accuracy": float(np.mean(accs)), "command": command,
                                    "what": "member 2 alone: frozen Whisper tiny.en, mean+std of all 5 hidden "
                                            "states, standardised, logistic regression (C=0.1)"}
        log.info("probe: %s mean %.3f", np.round(accs, 3), np.mean(accs))
        cnn_pred = np.zeros((len(items), len(EMOTIONS)))
        cnn_cfg = VoiceTrainConfig(**{**asdict(cfg), "lr_head": 2e-3})
        t_cnn = time.time()
        for f in run_folds:
            tr, te = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
            torch.manual_seed(args.seed)
            net = train_net(MelCNN(), waves, labels, tr, cnn_cfg, device, f"cnn fold {f}")
            for i, ws in zip(te, predict_items(net, items, waves, te, speed1), strict=True):
                cnn_pred[i] = pool_voice(ws)
            log.info("cnn fold %d: accuracy %.3f", f, fold_accuracy(labels, cnn_pred, folds, [f])[0])
        m = np.isin(folds, run_folds)
        accs = fold_accuracy(labels, cnn_pred, folds, run_folds)
        summary = summarize(labels[m], cnn_pred[m], EMOTIONS)
        ablation["logmel_cnn_scratch"] = {
            "fold_accuracy": accs, "mean_accuracy": float(np.mean(accs)), "macro_f1": summary["macro_f1"],
            "what": "4-block log-mel CNN (32-64-128-256 channels) from scratch, same augmentation and epochs, "
                    "head lr 2e-3", "device": str(device), "minutes": round((time.time() - t_cnn) / 60, 1),
            "command": command}
        log.info("cnn: %s mean %.3f", np.round(accs, 3), np.mean(accs))
        if not args.quick:  # the CNN's out-of-fold table, for comparisons with the shipped members
            with open(out / "voice_cnn_oof.csv", "w", newline="") as fh:
                wr = csv.writer(fh)
                wr.writerow(["file", "actor", "fold", "true", *EMOTIONS])
                for i in np.flatnonzero(m):
                    wr.writerow([items[i].path.name, items[i].actor, folds[i] + 1, items[i].label,
                                 *(f"{v:.5f}" for v in cnn_pred[i])])
        if getattr(args, "ablation_only", False):  # keep the committed CV results, update only the ablations
            previous = reports / ("voice_quick.json" if args.quick else "voice_cv.json")
            old = json.loads(previous.read_text()) if previous.exists() else {}
            results = {**old, "ablation": {**old.get("ablation", {}), **ablation}}
        else:
            results["ablation"] = ablation

    _dump(results, out, reports, args.quick)
    return 0


def _dump(results: dict, out: Path, reports: Path, quick: bool) -> None:
    name = "voice_quick.json" if quick else "voice_cv.json"
    (out / name).write_text(json.dumps(results, indent=2))
    if not quick:
        reports.mkdir(parents=True, exist_ok=True)
        (reports / name).write_text(json.dumps(results, indent=2))


def summarize_oof(path: str | Path) -> dict:
    """Metrics of a committed out-of-fold file (reports/voice_oof.csv): pooled and per fold."""
    import pandas as pd

    df = pd.read_csv(path)
    y = df["true"].map(EMOTIONS.index).to_numpy()
    p = df[list(EMOTIONS)].to_numpy()
    out = summarize(y, p, EMOTIONS)

    def by_fold(frame: pd.DataFrame) -> list[float]:
        return [float((g["true"] == g["pred"]).mean()) for _, g in frame.groupby("fold")]

    out["fold_accuracy"] = by_fold(df)
    out["mean_fold_accuracy"] = float(np.mean(out["fold_accuracy"]))
    out["actor_accuracy"] = {int(a): float((g["true"] == g["pred"]).mean()) for a, g in df.groupby("actor")}
    # the clips the personal-baseline table scores: each actor's neutral and calm clips are their baseline
    out["fold_accuracy_without_baseline_clips"] = by_fold(df[~df["true"].isin(BASELINE_EMOTIONS)])
    return out


def evaluate(args: argparse.Namespace) -> int:
    """Score the shipped voice model on every RAVDESS-named clip under --data (e.g. unseen
    actors 21-24), through the same windowed path as ``analyze``; or, with --data oof,
    summarise the committed out-of-fold predictions of the shipped model (the ensemble of the
    fine-tuned encoder and the frozen-encoder probe, ``voice_ensemble.py``; ``registry.VOICE_OOF``), of the
    ensemble with the RAVDESS-only probe shipped until 2026-11-26, and of the fine-tuned one alone."""

    if args.data == "oof":
        res = {"shipped_ensemble": summarize_oof(REPORTS_DIR / VOICE_OOF),
               "ravdess_only_probe_ensemble": summarize_oof(REPORTS_DIR / "voice_ensemble_oof.csv"),
               "finetuned_alone": summarize_oof(REPORTS_DIR / "voice_oof.csv")}
    else:
        items = find_ravdess(args.data)
        lm = load_model("voice", args.weights, resolve_device(args.device))
        waves = load_waveforms(items, (1.0,))
        probs = np.stack([pool_voice(w, lm.temperature)
                          for w in predict_items(lm.model, items, waves, np.arange(len(items)), 0)])
        y = np.array([it.emotion for it in items])
        res = summarize(y, probs, EMOTIONS)
        res["actor_accuracy"] = {a: float((probs[[it.actor == a for it in items]].argmax(1) ==
                                           y[[it.actor == a for it in items]]).mean())
                                 for a in sorted({it.actor for it in items})}
    print(json.dumps(res, indent=2))
    return 0
