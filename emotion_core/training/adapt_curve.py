"""The learning curve of a profile: how much adapting to a few labelled clips buys, whole speakers held out.

    python -m emotion_core evaluate adapt-curve --data ../shared/data --out runs/corpora

A profile is for a corpus the model never heard, and the shipped voice model heard URDU and TurEV-DB
(``train voice-corpora``). So for each of them the base model is the shipped recipe *one corpus out*:
member 2's plain head refitted as the checkpoint says it was (its feature copies, loss and C) on the other
two corpora, in the geometric mean with member 1 (RAVDESS only) at the shipped weight and temperature.
Its speakers are split into five groups (TurEV-DB: its six speakers one at a time). For each held-out
group, k = 5, 10 and 20 labelled clips per emotion are drawn from the *other* speakers of the same corpus
(five draws), a profile is fitted on them with ``profile.fit_profile`` (the code behind ``adapt`` and the
app) over that base model, and every clip of the held-out speakers is scored, predictions among the
corpus's emotions. "none" is the base model without a profile; "all" fits on every clip of the other
speakers.

The same base model also measures the shipped **personal baseline** on these corpora (``baseline_transfer``):
each speaker with two or more neutral (URDU) or calm (TurEV-DB) clips gives half of them as their baseline
recording, and the rest of their clips are read through the baseline path and through the plain one.

Inputs come from the cache of ``train voice-corpora`` (stage 1: member 1's clip probabilities and the
frozen encoder's clip features, pooled over voiced windows as ``adapt`` does). Writes
``reports/adapt_curve.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch

from ..constants import EMOTIONS
from ..profile import adapted_logprobs, fit_profile
from ..registry import REPORTS_DIR, load_model
from ..voice_ensemble import StandardisedLinear
from .train_probe import BASELINE_EMOTIONS, PROBE_C, geometric, power
from .voice_corpora import LOSS, Table, corpus_scores, features_stage, head_probabilities, speaker_relative

log = logging.getLogger(__name__)

SHOTS = (5, 10, 20)
DRAWS = 5
N_GROUPS = 5
COMMAND = "python -m emotion_core evaluate adapt-curve --data ../shared/data --out runs/corpora"


def speaker_groups(speakers: np.ndarray, n_groups: int = N_GROUPS) -> list[np.ndarray]:
    """Speakers dealt into at most ``n_groups`` groups of similar clip counts (largest first)."""
    names, counts = np.unique(speakers, return_counts=True)
    groups: list[list[str]] = [[] for _ in range(min(n_groups, len(names)))]
    load = np.zeros(len(groups))
    for i in np.argsort(-counts, kind="stable"):
        g = int(np.argmin(load))
        groups[g].append(names[i])
        load[g] += counts[i]
    return [np.array(g) for g in groups]


def profile_probs(logp_train: np.ndarray, z_train: np.ndarray, y_train: np.ndarray, logp_test: np.ndarray,
                  z_test: np.ndarray) -> np.ndarray:
    """Fit a profile on the training clips and return the test clips' adapted probabilities."""
    prof = fit_profile(logp_train, z_train, y_train, "curve", {})
    seen = torch.tensor([EMOTIONS.index(c) for c in prof.classes])
    out = adapted_logprobs(torch.from_numpy(logp_test), torch.from_numpy(z_test), seen,
                           torch.from_numpy(prof.weight), torch.from_numpy(prof.bias), prof.gain)
    return out.exp().numpy()


def draw(rows: np.ndarray, labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k clips per class (all of a class when it has fewer) from ``rows``."""
    out = []
    for c in np.unique(labels[rows]):
        idx = rows[labels[rows] == c]
        out.append(rng.choice(idx, size=min(k, len(idx)), replace=False))
    return np.concatenate(out)


def curve(table: Table, corpus: str, z: np.ndarray, logp: np.ndarray) -> dict:
    rows = np.flatnonzero(table.corpora == corpus)
    groups = speaker_groups(table.speakers[rows])
    y = table.labels
    settings = ["none", *[f"k={k}" for k in SHOTS], "all"]
    per: dict[str, list[dict]] = {s: [] for s in settings}
    for gi, group in enumerate(groups):
        test = rows[np.isin(table.speakers[rows], group)]
        train = rows[~np.isin(table.speakers[rows], group)]
        per["none"].append(corpus_scores(y[test], np.exp(logp[test]), corpus))
        for k in SHOTS:
            for d in range(DRAWS):
                pick = draw(train, y, k, np.random.default_rng([gi, k, d]))
                per[f"k={k}"].append(corpus_scores(y[test], profile_probs(logp[pick], z[pick], y[pick], logp[test],
                                                                          z[test]), corpus))
        per["all"].append(corpus_scores(y[test], profile_probs(logp[train], z[train], y[train], logp[test], z[test]),
                                        corpus))

    def mean(scores: list[dict], key: str) -> float | None:
        vals = [s[key] for s in scores if s[key] is not None]
        return float(np.mean(vals)) if vals else None

    return {"groups": [list(map(str, g)) for g in groups],
            "settings": {s: {m: mean(v, m) for m in ("accuracy", "uar", "neutral_recall")} |
                         {"worst_group_accuracy_change": None if s == "none" else float(min(
                             np.mean([x["accuracy"] for x in v[g * (len(v) // len(groups)):(g + 1) * (len(v) // len(groups))]])
                             - per["none"][g]["accuracy"] for g in range(len(groups))))}
                         for s, v in per.items()}}


def shipped_ensemble(p_finetuned: np.ndarray, p_probe: np.ndarray, meta: dict) -> np.ndarray:
    """Member 1 and a member-2 head's probabilities combined as the shipped checkpoint says (weight, temperature)."""
    return power(geometric(p_finetuned, p_probe, float(meta.get("ensemble_weight", 1.0))),
                 float(meta.get("temperature", 1.0)))


def corpus_out_base(table: Table, corpus: str, meta: dict, variants: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Standardised features and log-probabilities of every clip under the shipped recipe trained without
    ``corpus``: what a profile starts from on a corpus the model never heard."""
    head = table.fit_probe(table.corpora != corpus, variants, table.feats["clean"].shape[1], meta.get("loss", LOSS),
                           meta.get("c", PROBE_C))
    x = table.feats["clean"]
    z = (x - head.mean.numpy()) / head.scale.numpy()
    return z, np.log(np.clip(shipped_ensemble(table.shipped["finetuned"], head_probabilities(head, x), meta), 1e-12, 1))


def baseline_split(table: Table, corpus: str, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """For every speaker of ``corpus`` with two or more neutral or calm clips: half of those clips (rounded
    up, drawn with ``seed``) are their baseline recording; the rest of their clips are scored. Returns the
    scored rows and each speaker's baseline rows."""
    base_class = np.isin(table.labels, [EMOTIONS.index(e) for e in BASELINE_EMOTIONS])
    rng = np.random.default_rng(seed)
    scored, baselines = [], {}
    for spk in np.unique(table.speakers[table.corpora == corpus]):
        rows = np.flatnonzero(table.speakers == spk)
        cand = rng.permutation(rows[base_class[rows]])
        if len(cand) < 2:
            continue
        baselines[str(spk)] = np.sort(cand[: (len(cand) + 1) // 2])
        scored.append(rows[~np.isin(rows, baselines[str(spk)])])
    return (np.concatenate(scored) if scored else np.zeros(0, int)), baselines


def baseline_transfer(table: Table, corpus: str, logp: np.ndarray, baseline_head: StandardisedLinear,
                      meta: dict) -> dict:
    """The shipped personal-baseline path (member 1 with the baseline head, which learned from RAVDESS only)
    on a corpus it never heard, against the plain path ``logp`` on the same clips: accuracy and UAR among
    the corpus's emotions, the recall of the baseline's own emotion on the speakers' *other* neutral or calm
    clips (a person at ease should still read so), and accuracy on their emotional clips."""
    rows, baselines = baseline_split(table, corpus)
    if not len(rows):
        return {"n_speakers": 0}
    is_base = np.zeros(len(table.labels), bool)
    is_base[np.concatenate(list(baselines.values()))] = True
    rel, _ = speaker_relative(table.feats["clean"], table.labels, table.speakers, is_base)
    with_base = shipped_ensemble(table.shipped["finetuned"][rows], head_probabilities(baseline_head, rel[rows]), meta)
    y = table.labels[rows]
    at_ease = np.isin(y, [EMOTIONS.index(e) for e in BASELINE_EMOTIONS])

    def scores(p: np.ndarray) -> dict:
        s = corpus_scores(y, p, corpus)
        return {"accuracy": s["accuracy"], "uar": s["uar"],
                "at_ease_recall": corpus_scores(y[at_ease], p[at_ease], corpus)["accuracy"],
                "emotional_accuracy": corpus_scores(y[~at_ease], p[~at_ease], corpus)["accuracy"]}

    return {"n_speakers": len(baselines), "n_scored": int(len(rows)), "n_at_ease": int(at_ease.sum()),
            "baseline_clips": int(is_base.sum()), "plain": scores(np.exp(logp[rows])), "with_baseline": scores(with_base)}


def main(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shipped = load_model("voice", args.compare_weights)
    meta = shipped.meta
    variants = tuple(meta.get("variants", ("clean",)))
    features_stage(args, out, variants=variants)
    table = Table.load(out, variants=variants)
    res = {"protocol": ("the base model is the shipped recipe with the corpus held out (member 2's head refitted on "
                        "the other two corpora, member 1 RAVDESS only); whole speakers held out (URDU: five groups "
                        "of speakers; TurEV-DB: each of its six speakers); k labelled clips per emotion from the other "
                        f"speakers of the same corpus, {DRAWS} draws; scores among the corpus's emotions, mean over "
                        "groups and draws"),
           "command": COMMAND, "base_model": {k: meta.get(k) for k in ("recipe", "loss", "ensemble_weight", "temperature")}}
    for corpus in ("urdu", "turev"):
        z, logp = corpus_out_base(table, corpus, meta, variants)
        res[corpus] = curve(table, corpus, z, logp)
        res[corpus]["baseline"] = baseline_transfer(table, corpus, logp, shipped.model.probe.baseline_head, meta)
        log.info("%s: %s", corpus, {s: round(v["accuracy"], 3) for s, v in res[corpus]["settings"].items()})
    reports = Path(args.reports or REPORTS_DIR)
    (reports / "adapt_curve.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps({c: {"profile": res[c]["settings"], "baseline": res[c]["baseline"]} for c in ("urdu", "turev")},
                     indent=2))
    return 0
