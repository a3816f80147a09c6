"""Face model soups: average the weights of face models fine-tuned from one start (issue #29).

    python -m emotion_core train face-soup --data ../shared/data --out runs/faces --tag soups \\
        --ingredients runs/faces/fer2013-start runs/faces/ferplus-majority runs/faces/ferplus-votes \\
        runs/faces/ferplus-votes-wild

Why: the face model must hold up on faces from elsewhere (posed lab photos, talking video) that it may never
see while it is built. Models fine-tuned from the same start lie in one basin of the loss, and the average
of their weights is often better than each of them, on shifted data most of all (Wortsman et al. 2022,
"Model soups", ICML; Wortsman et al. 2022, "Robust fine-tuning of zero-shot models", CVPR); averages are
also better calibrated. The soup is one network: the app runs it at the cost of one model, unlike an
ensemble.

Ingredients: the three FER+ candidates of ``face_wild`` (``ferplus-majority``, ``ferplus-votes``,
``ferplus-votes-wild``, one epoch each from the same model) and that start, the face model shipped before
FER+ (``b12a760:weights/face.pt``, trained on FER2013's own labels). All read the same aligned crops.

**The rule, committed before any soup was scored:**

1. Soups, each scored on the selection faces only (FER2013 PublicTest by its FER+ majority, the held-aside
   SFEW Train films, as in ``face_wild``):
   - ``uniform``: the mean of the three FER+ candidates;
   - ``greedy``: the ingredients in order of their mean selection accuracy, best first; each joins if the
     soup's mean selection accuracy does not fall (the greedy soup of the paper).
   BatchNorm running statistics are averaged with the weights; for each soup the variant with its statistics
   re-estimated on 4,096 training faces (``+bn``) is scored too.
2. Each soup's temperature is fitted as the candidates' were: on the two selection sets, counted equally.
3. A soup ships by the FER+ rule of ``face_wild``, against the model shipped now (``ferplus-majority``):
   it beats that model's mean selection accuracy, loses at most 1.0 point on the films, and has ECE <= 0.10
   on each selection set; among those that qualify, the best mean.
4. FER2013 PrivateTest (both labellings) and SFEW Val are scored once per soup and choose nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..models import FaceNet
from ..options import parse_overrides
from ..registry import FILES, LoadedModel, load_checkpoint
from . import face_wild
from .train_face import to_tensor

log = logging.getLogger(__name__)

BN_FACES = 4096
"""Training faces the ``+bn`` variants re-estimate BatchNorm statistics on."""
UNIFORM = ("ferplus-majority", "ferplus-votes", "ferplus-votes-wild")
"""The uniform soup's ingredients (by folder name)."""


SOUPS = ("soup-uniform", "soup-greedy", "soup-uniform+bn", "soup-greedy+bn")
SHIPPED = "ferplus-majority"
"""The model shipped when the rule was written, which a soup must beat."""


def soup_decision(runs: dict) -> dict:
    """Rule 3 applied to ``reports/face_wild.json``'s runs: each soup's checks and the one that ships (None: the
    shipped model stays).

        python -m emotion_core.training.face_soup reports/face_wild.json
    """
    return face_wild.ferplus_decision(runs, shipped=SHIPPED, candidates=SOUPS)


def average_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of state dicts of one architecture (float32); integer buffers (BatchNorm's batch
    count) are taken from the first."""
    return {k: torch.stack([s[k].float() for s in states]).mean(0) if states[0][k].is_floating_point()
            else states[0][k].clone() for k in states[0]}


@torch.no_grad()
def reestimate_bn(net: FaceNet, faces: np.ndarray, batch_size: int = 256) -> FaceNet:
    """BatchNorm running statistics recomputed over ``faces`` ((n, 48, 48) uint8) as the mean of the batches'
    statistics: an average of weights need not match the average of its ingredients' statistics."""
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
    net.train()
    for i in range(0, len(faces), batch_size):
        net(to_tensor(faces[i: i + batch_size], torch.device("cpu")))
    for m in bns:
        m.momentum = 0.1
    return net.eval()


def make_soup(states: list[dict[str, torch.Tensor]], template: FaceNet, bn_faces: np.ndarray | None) -> FaceNet:
    """A network with the mean of ``states``; BatchNorm re-estimated on ``bn_faces`` when given."""
    net = FaceNet(template.cfg)
    net.load_state_dict(average_states(states))
    net.eval()
    return reestimate_bn(net, bn_faces) if bn_faces is not None else net


def selection_mean(net: FaceNet, data: face_wild.WildData) -> tuple[float, dict]:
    """The mean selection accuracy (what the rule orders and compares by) and the selection figures."""
    res = face_wild.selection(LoadedModel("face", net, {}), data)
    return float(np.mean(list(res["selection"].values()))), res


def greedy(names: list[str], states: dict[str, dict], scores: dict[str, float], data: face_wild.WildData,
           template: FaceNet, bn_faces: np.ndarray | None) -> tuple[list[str], list[dict]]:
    """The greedy soup (rule 1): ingredients best first, each kept if the mean selection accuracy does not fall."""
    order = sorted(names, key=lambda n: -scores[n])
    chosen, best, steps = [order[0]], scores[order[0]], []
    if bn_faces is not None:
        best = selection_mean(make_soup([states[order[0]]], template, bn_faces), data)[0]
    for name in order[1:]:
        mean = selection_mean(make_soup([states[n] for n in [*chosen, name]], template, bn_faces), data)[0]
        steps.append({"try": name, "mean": mean, "kept": mean >= best})
        log.info("greedy%s: + %s -> %.4f (best %.4f)", "+bn" if bn_faces is not None else "", name, mean, best)
        if mean >= best:
            chosen, best = [*chosen, name], mean
    return chosen, steps


def main(args: argparse.Namespace) -> int:
    """Score the ingredients, build the soups of the rule, and score and keep each under OUT/<soup tag>/."""
    t0 = time.time()
    over = parse_overrides(getattr(args, "set", None), face_wild.WildTrainConfig)[0]
    cfg = face_wild.WildTrainConfig(**{"select_labels": "ferplus", "calibrate_per_set": True, **over})
    data = face_wild.load_data(args.out, cfg, args.data)
    nets, states, scores, ingredients = {}, {}, {}, {}
    for folder in args.ingredients:
        name = Path(folder).name
        nets[name], meta = load_checkpoint(Path(folder) / FILES["face"])
        states[name] = nets[name].state_dict()
        scores[name], res = selection_mean(nets[name], data)
        ingredients[name] = {"sha256": meta.get("sha256"), "selection_mean": scores[name], **res}
        log.info("ingredient %s: selection %s", name, json.dumps(res["selection"]))
    template = next(iter(nets.values()))
    rng = np.random.default_rng(cfg.seed)
    bn_faces = data.train_x[rng.choice(len(data.train_x), size=min(BN_FACES, len(data.train_x)), replace=False)]
    names = list(states)
    soups: dict[str, tuple[list[str], list[dict]]] = {}
    uniform = [n for n in UNIFORM if n in states] or names  # a test's ingredients have other names
    for bn in (False, True):
        suffix = "+bn" if bn else ""
        soups["soup-uniform" + suffix] = (uniform, [])
        soups["soup-greedy" + suffix] = greedy(names, states, scores, data, template, bn_faces if bn else None)
    done: dict[tuple, str] = {}
    for tag, (members, steps) in soups.items():
        key = (tuple(sorted(members)), tag.endswith("+bn"))
        if len(members) == 1 or key in done:  # one ingredient is no soup; the same soup is scored once
            log.info("%s = %s: not scored again", tag, done.get(key, members[0]))
            continue
        done[key] = tag
        net = make_soup([states[n] for n in members], template, bn_faces if tag.endswith("+bn") else None)
        run_dir = Path(args.out) / tag
        run_dir.mkdir(parents=True, exist_ok=True)
        meta = {"trained_on": "weight average of face models fine-tuned from one start: " + ", ".join(members),
                "licence": "FER2013 and SFEW: research, non-commercial use; FER+ votes MIT"
                           + ("; wild faces: repository Apache-2.0, LFW images their own terms"
                              if any("wild" in n for n in members) else "")}
        face_wild.finish(net, cfg, data, run_dir, tag, args, t0,
                         {**meta, "ingredients": {n: ingredients[n]["sha256"] for n in members}},
                         {"soup": {"members": members, "greedy_steps": steps, "bn_reestimated": tag.endswith("+bn"),
                                   "ingredients": {n: ingredients[n] for n in names}}})
    return 0


if __name__ == "__main__":
    import sys

    print(json.dumps(soup_decision(json.loads(Path(sys.argv[1]).read_text())["runs"]), indent=2))
