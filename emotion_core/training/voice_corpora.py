"""Training the voice model across corpora, and measuring it one corpus out.

    python -m emotion_core train voice-corpora --data ../shared/data --out runs/corpora

Stages (each resumable: a finished stage's files in ``--out`` are reused):

1. ``features``: the frozen encoder's features (``VoiceProbe.features``, pooled over voiced windows
   like a baseline) of every clip of RAVDESS actors 01-20, URDU and TurEV-DB, once clean and once per
   augmentation family (``augment.py``); for URDU and TurEV-DB also the shipped fine-tuned member's
   and the shipped ensemble's clip probabilities (neither has heard those corpora).
2. ``evaluate``: one corpus out (train on the other two, test on it) and the RAVDESS 5-fold actor
   protocol, for today's model and the new recipe, with the augmentation ablation;
   ``reports/voice_corpora.json`` and the out-of-fold predictions ``reports/voice_corpora_oof.csv``.
3. ``ship``: the probe's head fitted on all three corpora with the recipe, written into
   ``weights/voice_probe.pt`` with the ensemble weight and temperature; the personal-baseline head of
   the shipped file (``train voice-probe``, RAVDESS) is kept: trained across corpora it lowered accuracy
   one corpus out on every corpus (``with_baseline`` in the report).

The recipe: a corpus labels only some emotions (``corpora.CORPUS_CLASSES``). Two losses (``LOSSES``):
``masked``, the cross-entropy over the clip's corpus's classes only (the other classes' logits are left
out of the softmax, not pushed down); ``compatible``, the softmax over all eight with a label standing
for the emotions it is compatible with (``corpora.compatible_targets``: an URDU "neutral" may be calm, a
TurEV-DB "calm" neutral), so a labelled clip pushes down the emotions its label excludes. Every corpus
weighs the same in the loss and, inside a corpus, every class; the features of every augmented copy
join the clean ones.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..baseline import recording_features
from ..constants import EMOTIONS, SAMPLE_RATE
from ..inference import pool_voice, predict_voice_windows
from ..metrics import fit_temperature, nll
from ..profile import balanced_weights, fit_softmax
from ..registry import REPORTS_DIR, WEIGHTS_DIR, LoadedModel, load_checkpoint, load_model, save_checkpoint
from ..voice_ensemble import StandardisedLinear, VoiceProbe
from .augment import FAMILIES, augment
from .corpora import CORPUS_CLASSES, Clip, compatible_targets, corpus_mask, find_corpora, ravdess_folds
from .datasets import ACTOR_FOLDS, load_waveforms
from .train_probe import ABSENT_CLASS_LOGIT, BASELINE_EMOTIONS, PROBE_C, build_probe, geometric, power
from .voice_finetune import clip_key

log = logging.getLogger(__name__)

THREE = ("ravdess", "urdu", "turev")
"""The corpora of this three-corpora protocol (the shared ones); nEMO's four-corpora protocol: voice_offcorpus."""

VARIANTS = ("clean", *FAMILIES, "all")
"""Feature sets: the clean clips, one augmented copy per family, and one copy with every family chained."""


# --- stage 1: features -------------------------------------------------------------------------
def clip_features(probe: VoiceProbe, y: np.ndarray) -> np.ndarray:
    """A clip's probe features: voiced windows pooled, or the whole clip when no window holds enough voice."""
    f = recording_features(probe, y)
    return f if f is not None else recording_features(probe, y, [(0.0, len(y) / SAMPLE_RATE, 1.0)])


def variant_features(probe: VoiceProbe, waves: list[np.ndarray], variant: str, seed: int) -> np.ndarray:
    """(n, features) for every clip, clean or through one augmentation family (babble from other clips)."""
    rng = np.random.default_rng([seed, VARIANTS.index(variant)])
    out = []
    t0 = time.time()
    for i, y in enumerate(waves):
        if variant != "clean":
            others = [waves[j] for j in rng.choice(len(waves), 5, replace=False) if j != i]
            y = augment(y, variant, rng, others)
        out.append(clip_features(probe, y))
        if (i + 1) % 500 == 0:
            log.info("  %s: %d/%d clips (%.0f s)", variant, i + 1, len(waves), time.time() - t0)
    return np.stack(out).astype(np.float32)


def clip_probabilities(model: LoadedModel, y: np.ndarray) -> np.ndarray:
    """Clip probabilities through the path ``analyze`` uses (voiced windows, pooled)."""
    windows = predict_voice_windows(model, y) or predict_voice_windows(model, y, [(0.0, len(y) / SAMPLE_RATE, 1.0)])
    return pool_voice(windows)


def shipped_probabilities(waves: list[np.ndarray], weights: str | None, today: bool = True, finetuned: bool = True
                          ) -> dict[str, np.ndarray]:
    """Today's shipped ensemble and its fine-tuned member on each clip (each unless its flag is False)."""
    ens = load_model("voice", weights)
    ft = LoadedModel("voice", ens.model.finetuned, {"temperature": ens.model.finetuned_temperature})
    out = {}
    if finetuned:
        out["finetuned"] = np.stack([clip_probabilities(ft, y) for y in waves])
    if today:
        out["today"] = np.stack([clip_probabilities(ens, y) for y in waves])
    return out


def clip_file(clip: Clip, data: Path, roots: dict[str, Path]) -> str:
    """A clip's name in the tables: relative to the data folder, or ``corpus/...`` for a fetched corpus."""
    if clip.corpus in roots:
        return f"{clip.corpus}/{clip.path.relative_to(roots[clip.corpus]).as_posix()}"
    return str(clip.path.relative_to(data))


def write_clip_table(clips: list[Clip], data: Path, path: Path, roots: dict[str, Path] | None = None) -> None:
    import pandas as pd

    pd.DataFrame({"file": [clip_file(c, data, roots or {}) for c in clips], "emotion": [c.label for c in clips],
                  "speaker": [c.speaker for c in clips], "corpus": [c.corpus for c in clips]}).to_csv(path, index=False)


def fetched_roots(args: argparse.Namespace) -> dict[str, Path]:
    """The fetched corpora the command was given (``--nemo DIR``)."""
    return {"nemo": Path(args.nemo)} if getattr(args, "nemo", None) else {}


def features_stage(args: argparse.Namespace, out: Path, variants: tuple[str, ...] = VARIANTS) -> None:
    """Stage 1 (module docstring). With a fetched corpus (nEMO), today's shipped ensemble is run on that corpus
    only: it has heard URDU and TurEV-DB, so its figures there would not be one corpus out."""
    data = Path(args.data)
    roots = fetched_roots(args)
    clips = find_corpora(data, roots=roots)
    write_clip_table(clips, data, out / "clips.csv", roots)
    todo = [v for v in variants if not (out / f"features_{v}.npy").exists()]
    if not todo and (out / "shipped.npz").exists():
        return
    log.info("loading %d clips", len(clips))
    waves = [w[0] for w in load_waveforms(clips, (1.0,))]
    probe = build_probe(args.whisper)
    for v in todo:
        log.info("features: %s", v)
        np.save(out / f"features_{v}.npy", variant_features(probe, waves, v, args.seed))
    if not (out / "shipped.npz").exists():
        other = [i for i, c in enumerate(clips) if c.corpus != "ravdess"]
        log.info("today's model on %d clips of the other corpora", len(other))
        p = shipped_probabilities([waves[i] for i in other], args.compare_weights, today=not roots)
        full = {k: np.full((len(clips), len(EMOTIONS)), np.nan) for k in ("finetuned", "today")}
        for k in p:
            full[k][other] = p[k]
        if roots:
            fetched = [i for i, c in enumerate(clips) if c.corpus in roots]
            full["today"][fetched] = shipped_probabilities([waves[i] for i in fetched], args.compare_weights,
                                                           finetuned=False)["today"]
        np.savez(out / "shipped.npz", **full)


# --- the recipe: a linear head with the loss over each corpus's classes ---------------------------
LOSSES = ("masked", "compatible")
"""How a clip's label enters the loss (module docstring); ``LOSS`` is the default."""
LOSS = "masked"


def fit_masked_head(head: StandardisedLinear, x: np.ndarray, labels: np.ndarray, corpora: np.ndarray,
                    weight_rows: float = 1.0, c: float = PROBE_C, loss: str = LOSS) -> StandardisedLinear:
    """Fit ``head`` (standardisation + linear) by L2 logistic regression (``profile.fit_softmax``,
    scikit-learn's objective) whose softmax, for each row, runs over its corpus's classes only (``masked``)
    or over all eight with the label's compatible emotions as its target (``compatible``); every corpus
    and, inside it, every class weighs the same, the weights summing to ``len(x) * weight_rows`` (so
    stacked augmented copies do not weaken the penalty); a class that no training clip can be keeps
    ``ABSENT_CLASS_LOGIT``."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}: one of {', '.join(LOSSES)}")
    mean = x.mean(0, dtype=np.float64)
    scale = x.std(0, dtype=np.float64)
    scale[scale == 0] = 1.0
    if loss == "masked":
        allowed, targets = corpus_mask(corpora), None
        seen = allowed.any(0)
    else:
        allowed, targets = np.ones((len(labels), len(EMOTIONS)), bool), compatible_targets(labels, corpora)
        seen = targets.any(0)
    w, b, _ = fit_softmax((x - mean) / scale, labels, allowed, balanced_weights(labels, corpora) * weight_rows, c,
                          targets=targets)
    b[~seen] = ABSENT_CLASS_LOGIT
    with torch.no_grad():
        head.mean.copy_(torch.from_numpy(mean))
        head.scale.copy_(torch.from_numpy(scale))
        head.linear.weight.copy_(torch.from_numpy(w))
        head.linear.bias.copy_(torch.from_numpy(b))
    return head


@torch.no_grad()
def head_probabilities(head: StandardisedLinear, x: np.ndarray) -> np.ndarray:
    return torch.softmax(head(torch.from_numpy(x).to(head.mean.dtype)).float(), -1).double().numpy()


def speaker_relative(feats: np.ndarray, labels: np.ndarray, speakers: np.ndarray, is_base: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """[features, features - the speaker's baseline] and which rows have one; a speaker's baseline is
    the mean of their ``is_base`` clips (default: their neutral and calm clips, as in ``train_probe``),
    none when they have none."""
    if is_base is None:
        is_base = np.isin(labels, [EMOTIONS.index(e) for e in BASELINE_EMOTIONS])
    centred, has = np.zeros_like(feats), np.zeros(len(feats), bool)
    for s in np.unique(speakers):
        m = speakers == s
        if (m & is_base).any():
            centred[m] = feats[m] - feats[m & is_base].mean(0)
            has[m] = True
    return np.hstack([feats, centred]), has


@dataclass
class Table:
    """Every clip's metadata and its features per variant (the cache of stage 1)."""

    files: np.ndarray
    labels: np.ndarray
    speakers: np.ndarray
    corpora: np.ndarray
    feats: dict[str, np.ndarray]
    shipped: dict[str, np.ndarray]

    @classmethod
    def load(cls, out: Path, variants: tuple[str, ...] = VARIANTS) -> Table:
        import pandas as pd

        df = pd.read_csv(out / "clips.csv")
        shipped = dict(np.load(out / "shipped.npz"))
        return cls(df.file.to_numpy(), np.array([EMOTIONS.index(e) for e in df.emotion]), df.speaker.to_numpy(),
                   df.corpus.to_numpy(), {v: np.load(out / f"features_{v}.npy") for v in variants}, shipped)

    def train_set(self, rows: np.ndarray, variants: tuple[str, ...]) -> tuple[np.ndarray, ...]:
        """Features, labels and corpora of ``rows``, once per variant (augmented copies stacked)."""
        return (np.concatenate([self.feats[v][rows] for v in variants]), np.tile(self.labels[rows], len(variants)),
                np.tile(self.corpora[rows], len(variants)))

    def fit_probe(self, rows: np.ndarray, variants: tuple[str, ...], n_features: int, loss: str = LOSS,
                  c: float = PROBE_C) -> StandardisedLinear:
        x, y, corpora = self.train_set(rows, variants)
        return fit_masked_head(StandardisedLinear(n_features, len(EMOTIONS)), x, y, corpora, 1 / len(variants), c,
                               loss)

    def fit_baseline(self, rows: np.ndarray, variants: tuple[str, ...], n_features: int, loss: str = LOSS
                     ) -> StandardisedLinear:
        parts = [speaker_relative(self.feats[v][rows], self.labels[rows], self.speakers[rows]) for v in variants]
        has = np.concatenate([h for _, h in parts])
        x = np.concatenate([r for r, _ in parts])[has]
        y, c = np.tile(self.labels[rows], len(variants))[has], np.tile(self.corpora[rows], len(variants))[has]
        return fit_masked_head(StandardisedLinear(2 * n_features, len(EMOTIONS)), x, y, c, 1 / len(variants), loss=loss)


# --- the fine-tuned member trained across corpora (voice_finetune.py, run on a GPU) ---------------
def finetuned_tables(table: Table, runs: Path, suffix: str = "") -> dict[str, np.ndarray]:
    """The new member 1's probabilities for every clip: ``corpus_out`` (each corpus's rows from the run that
    held it out) and ``ravdess_5fold`` (RAVDESS rows from the fold runs); NaN where a run is missing."""
    import pandas as pd

    keys = {(c, clip_key(f)): i for i, (c, f) in enumerate(zip(table.corpora, table.files, strict=True))}
    out = {k: np.full((len(table.labels), len(EMOTIONS)), np.nan) for k in ("corpus_out", "ravdess_5fold")}
    names = [("corpus_out", f"{c}-out") for c in THREE] + \
            [("ravdess_5fold", f"fold{f}") for f in range(len(ACTOR_FOLDS))]
    for protocol, name in names:
        path = runs / f"{name}{suffix}.csv"
        if not path.exists():
            continue
        df = pd.read_csv(path)
        rows = [keys[(c, str(f))] for c, f in zip(df.corpus, df.file, strict=True)]
        if [EMOTIONS[k] for k in table.labels[rows]] != df.true.tolist():
            raise ValueError(f"{path}: labels differ from the corpora's")
        out[protocol][rows] = df[list(EMOTIONS)].to_numpy()
    return out


def finetuned_stage(table: Table, new: dict[str, np.ndarray], clean: dict[str, np.ndarray],
                    probe_out: np.ndarray, probe_five: np.ndarray, today: dict) -> dict:
    """One corpus out and RAVDESS 5-fold for the new member alone, without the domain families, and with
    the multi-corpus probe. The reported ensemble of each held-out corpus takes the weight best on the *other*
    two corpora (mean UAR one corpus out, among the weights that keep RAVDESS 5-fold at or above
    ``MIN_RAVDESS_5FOLD``); the shipped weight is the best on all three."""
    rav = table.corpora == "ravdess"
    folds = ravdess_folds(table.speakers, table.corpora)[rav]
    res: dict = {"corpus_out": {}, "ravdess_5fold": {}}
    y = table.labels[rav]

    def fold_scores(p: np.ndarray) -> dict:
        return ravdess_fold_scores(y, folds, p)

    for corpus in THREE:
        m = table.corpora == corpus
        if np.isnan(new["corpus_out"][m]).any():
            continue
        yc = table.labels[m]
        r = {"member": corpus_scores(yc, new["corpus_out"][m], corpus),
             "ensemble_by_weight": {str(w): corpus_scores(yc, geometric(new["corpus_out"][m], probe_out[m], w), corpus)
                                    for w in PROBE_WEIGHTS}}
        if not np.isnan(clean["corpus_out"][m]).any():
            r["member_clean"] = corpus_scores(yc, clean["corpus_out"][m], corpus)
        res["corpus_out"][corpus] = r
    complete = not np.isnan(new["ravdess_5fold"][rav]).any()
    if complete:
        res["ravdess_5fold"] = {
            "member": fold_scores(new["ravdess_5fold"][rav]),
            "ensemble": {str(w): fold_scores(geometric(new["ravdess_5fold"][rav], probe_five[rav], w)) for w in PROBE_WEIGHTS}}
    if not complete or set(res["corpus_out"]) != set(THREE):
        res["incomplete"] = True
        return res
    ok = [w for w in PROBE_WEIGHTS if res["ravdess_5fold"]["ensemble"][str(w)]["mean_accuracy"] >= MIN_RAVDESS_5FOLD]

    def best(on: tuple[str, ...]) -> float | None:
        return max(ok, key=lambda w: np.mean([res["corpus_out"][c]["ensemble_by_weight"][str(w)]["uar"] for c in on]),
                   default=None)

    for c in THREE:
        w = best(tuple(o for o in THREE if o != c))
        res["corpus_out"][c]["ensemble"] = None if w is None else {
            "weight": w, **res["corpus_out"][c]["ensemble_by_weight"][str(w)]}
    weight = best(THREE)
    others = ("urdu", "turev")
    gain = (None if weight is None else float(np.mean([res["corpus_out"][c]["ensemble"]["uar"] for c in others])
                                              - np.mean([today[c]["uar"] for c in others])))
    res["decision"] = {
        "probe_weight": weight, "eligible_weights": ok,
        "ravdess_5fold": None if weight is None else res["ravdess_5fold"]["ensemble"][str(weight)]["mean_accuracy"],
        "uar_gain_urdu_turev": gain, "ship": bool(gain is not None and gain > 0),
        "rule": "ship the new member with the multi-corpus probe at the weight best on all three corpora one corpus out "
                "if, with each corpus's weight chosen on the other two, its mean UAR on URDU and TurEV-DB beats today's "
                "model and its RAVDESS 5-fold accuracy stays at or above 78 %"}
    if weight is not None:
        ens = geometric(new["ravdess_5fold"][rav], probe_five[rav], weight)
        res["decision"]["member_temperature"] = fit_temperature(lambda t: nll(y, power(new["ravdess_5fold"][rav], t)))
        res["decision"]["temperature"] = fit_temperature(lambda t: nll(y, power(ens, t)))
    return res


# --- measuring ---------------------------------------------------------------------------------
def corpus_scores(labels: np.ndarray, probs: np.ndarray, corpus: str) -> dict:
    """Accuracy over all eight classes and, predictions taken among the corpus's classes, accuracy,
    unweighted average recall, per-class recall (neutral always shown) and the prediction shares."""
    classes = [EMOTIONS.index(e) for e in CORPUS_CLASSES[corpus]]
    pred = np.array(classes)[probs[:, classes].argmax(1)]
    recall = {EMOTIONS[k]: float((pred[labels == k] == k).mean()) for k in classes if (labels == k).any()}
    pred8 = probs.argmax(1)
    return {"n": int(len(labels)), "accuracy": float((pred == labels).mean()), "uar": float(np.mean(list(recall.values()))),
            "accuracy_8way": float((pred8 == labels).mean()), "recall": recall,
            "neutral_recall": recall.get("neutral"),
            "predicted_8way": {e: float((pred8 == i).mean()) for i, e in enumerate(EMOTIONS)}}


def ravdess_fold_scores(labels: np.ndarray, folds: np.ndarray, probs: np.ndarray) -> dict:
    """RAVDESS 5-fold scores of out-of-fold ``probs``: accuracy per fold, their mean, and ``corpus_scores``."""
    acc = [float((probs[folds == f].argmax(1) == labels[folds == f]).mean()) for f in range(len(ACTOR_FOLDS))]
    return {"fold_accuracy": acc, "mean_accuracy": float(np.mean(acc)), **corpus_scores(labels, probs, "ravdess")}


RECIPES: dict[str, tuple[str, ...]] = {
    "clean": ("clean",), **{f"+{f}": ("clean", f) for f in FAMILIES}, "+chained": ("clean", "all"),
    "every family": VARIANTS}
"""The ablation: clean clips alone, with one family's copy, with a copy through every family chained,
and with all of these copies. What ships is fixed before any measurement: ``RECIPE``."""
RECIPE = "every family"
PROBE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Weights of the probe in the geometric mean with the fine-tuned member (1.0: the probe alone)."""
MIN_RAVDESS_5FOLD = 0.78
"""A weight is eligible only if the RAVDESS 5-fold accuracy stays at or above this."""


def ravdess_oof(reports: Path, files: np.ndarray, name: str) -> np.ndarray:
    """Committed RAVDESS out-of-fold probabilities (5-fold, actors held out) in ``files`` order."""
    import pandas as pd

    df = pd.read_csv(reports / name).set_index("file")
    return df.loc[[Path(f).name for f in files], list(EMOTIONS)].to_numpy()


def choose_weight(corpus_out: dict, five_fold: dict, corpora: tuple[str, ...]) -> float:
    """The probe weight with the best mean UAR one corpus out on ``corpora`` among the weights that keep
    RAVDESS 5-fold at or above ``MIN_RAVDESS_5FOLD``."""
    ok = [w for w in PROBE_WEIGHTS if five_fold["ensemble"][str(w)]["mean_accuracy"] >= MIN_RAVDESS_5FOLD] or [0.5]
    return max(ok, key=lambda w: np.mean([corpus_out[c]["ensemble_by_weight"][str(w)]["uar"] for c in corpora]))


def evaluate_stage(table: Table, n_features: int, reports: Path = REPORTS_DIR, recipe: str = RECIPE,
                   loss: str = LOSS) -> dict:
    """One corpus out and the RAVDESS 5-fold protocol for the candidate ``recipe`` and the ablation recipes
    whose feature copies ``table`` holds, every head fitted with ``loss``; returns the report and the
    out-of-fold tables.

    ``reports`` holds the committed RAVDESS out-of-fold predictions of today's members (inputs)."""
    recipes = {name: v for name, v in RECIPES.items() if all(x in table.feats for x in v)}
    rav = table.corpora == "ravdess"
    p_ft = table.shipped["finetuned"].copy()
    p_ft[rav] = ravdess_oof(reports, table.files[rav], "voice_oof.csv")
    p_today = table.shipped["today"].copy()
    p_today[rav] = ravdess_oof(reports, table.files[rav], "voice_ensemble_oof.csv")
    oof = {name: np.zeros((len(table.labels), len(EMOTIONS))) for name in recipes}
    res: dict = {"corpus_out": {}, "ravdess_5fold": {}}
    rel, has_base = speaker_relative(table.feats["clean"], table.labels, table.speakers)
    scored = has_base & ~np.isin(table.labels, [EMOTIONS.index(e) for e in BASELINE_EMOTIONS])
    for corpus in THREE:
        test = table.corpora == corpus
        t0 = time.time()
        for name, variants in recipes.items():
            oof[name][test] = head_probabilities(table.fit_probe(~test, variants, n_features, loss), table.feats["clean"][test])
        y = table.labels[test]
        r = {"today": corpus_scores(y, p_today[test], corpus) if corpus != "ravdess" else None,
             "probe": {name: corpus_scores(y, oof[name][test], corpus) for name in recipes}}
        if corpus != "ravdess":  # the fine-tuned member never heard this corpus
            r["finetuned"] = corpus_scores(y, p_ft[test], corpus)
            r["ensemble_by_weight"] = {str(w): corpus_scores(y, geometric(p_ft[test], oof[recipe][test], w), corpus)
                                       for w in PROBE_WEIGHTS}
        m = test & scored
        if m.any():
            base = table.fit_baseline(~test, RECIPES[recipe], n_features, loss)
            p_base = head_probabilities(base, rel[m])
            r["with_baseline"] = {"n_speakers": int(len(np.unique(table.speakers[m]))),
                                  "probe": corpus_scores(table.labels[m], oof[recipe][m], corpus),
                                  "probe_with_baseline": corpus_scores(table.labels[m], p_base, corpus)}
        res["corpus_out"][corpus] = r
        log.info("%s out: probe %s UAR %.3f (%.0f s)", corpus, recipe, r["probe"][recipe]["uar"], time.time() - t0)
    folds = ravdess_folds(table.speakers, table.corpora)
    five = {name: np.zeros((len(table.labels), len(EMOTIONS))) for name in recipes}
    for f in range(len(ACTOR_FOLDS)):
        test = folds == f
        for name, variants in recipes.items():
            five[name][test] = head_probabilities(table.fit_probe(~test, variants, n_features, loss), table.feats["clean"][test])
    y = table.labels[rav]

    def fold_scores(p: np.ndarray) -> dict:
        return ravdess_fold_scores(y, folds[rav], p)

    res["ravdess_5fold"] = {"today": fold_scores(p_today[rav]), "finetuned": fold_scores(p_ft[rav]),
                            "probe": {name: fold_scores(five[name][rav]) for name in recipes},
                            "ensemble": {str(w): fold_scores(geometric(p_ft[rav], five[recipe][rav], w))
                                         for w in PROBE_WEIGHTS}}
    others = ("urdu", "turev")
    weight = choose_weight(res["corpus_out"], res["ravdess_5fold"], others)
    for c in others:  # the reported ensemble: its weight chosen on the other corpus, never on this one
        w = choose_weight(res["corpus_out"], res["ravdess_5fold"], tuple(o for o in others if o != c))
        res["corpus_out"][c]["ensemble"] = {"weight": w, **res["corpus_out"][c]["ensemble_by_weight"][str(w)]}
    ens_rav = geometric(p_ft[rav], five[recipe][rav], weight)
    temperature = fit_temperature(lambda t: nll(y, power(ens_rav, t)))
    res["shipped"] = {"recipe": recipe, "loss": loss, "probe_weight": weight, "temperature": temperature,
                      "ravdess_5fold": res["ravdess_5fold"]["ensemble"][str(weight)]["mean_accuracy"]}
    corpus_out_ens = oof[recipe].copy()
    for c in others:
        m = table.corpora == c
        corpus_out_ens[m] = geometric(p_ft[m], oof[recipe][m], res["corpus_out"][c]["ensemble"]["weight"])
    five_ens = np.full_like(p_today, np.nan)
    five_ens[rav] = ens_rav
    tables = {"corpus_out_probe": oof[recipe], "corpus_out_ensemble": corpus_out_ens,
              "ravdess_5fold_ensemble": five_ens, "today": p_today, "ravdess_5fold_probe": five[recipe]}
    return {"results": res, "oof": tables}


OOF_PROTOCOLS = ("corpus_out_probe", "corpus_out_ensemble", "ravdess_5fold_ensemble", "today",
                 "finetuned_corpus_out", "finetuned_corpus_out_clean", "finetuned_corpus_out_ensemble",
                 "finetuned_ravdess_5fold", "finetuned_ravdess_5fold_ensemble")
"""The tables written to the out-of-fold file, in order (rows without a prediction are left out)."""


def write_oof(table: Table, tables: dict[str, np.ndarray], path: Path) -> None:
    """Out-of-fold predictions, one row per clip and protocol (probabilities to 6 significant digits)."""
    import pandas as pd

    restrict = {"corpus_out_ensemble": table.corpora != "ravdess", "ravdess_5fold_ensemble": table.corpora == "ravdess"}
    frames = []
    known = [k for k in tables if k.split(":")[-1] in OOF_PROTOCOLS]  # today's protocols, then each variant's
    for name in sorted(known, key=lambda k: (":" in k, k.split(":")[0] if ":" in k else "",
                                             OOF_PROTOCOLS.index(k.split(":")[-1]))):
        rows = ~np.isnan(tables[name]).any(1) & restrict.get(name, True)
        if not rows.any():
            continue
        p = tables[name][rows]
        df = pd.DataFrame({"protocol": name, "file": table.files[rows], "corpus": table.corpora[rows],
                           "speaker": table.speakers[rows], "true": [EMOTIONS[k] for k in table.labels[rows]],
                           "pred": [EMOTIONS[k] for k in p.argmax(1)]})
        df[list(EMOTIONS)] = p
        frames.append(df)
    pd.concat(frames).to_csv(path, index=False, float_format="%.6g")  # 6 significant digits: small ones too


def write_ravdess_ensemble_oof(table: Table, five_ens: np.ndarray, temperature: float | np.ndarray, inputs: Path,
                               path: Path) -> None:
    """The candidate ensemble's RAVDESS 5-fold out-of-fold probabilities at its temperature (as the app gives
    them; one per RAVDESS clip when the temperature follows each recording's familiarity) in ``voice_oof.csv``'s
    layout (file, actor, fold, intensity, statement): ``registry.VOICE_OOF``."""
    import pandas as pd

    rav = table.corpora == "ravdess"
    base = pd.read_csv(inputs / "voice_oof.csv").set_index("file")
    out = base.loc[[Path(f).name for f in table.files[rav]]].reset_index().drop(columns=[*EMOTIONS, "pred"])
    p = power(five_ens[rav], temperature)
    out["pred"] = [EMOTIONS[i] for i in p.argmax(1)]
    out[list(EMOTIONS)] = np.round(p, 5)
    out.to_csv(path, index=False)


def finetuned_oof(table: Table, new: dict[str, np.ndarray], clean: dict[str, np.ndarray], probe_five: np.ndarray,
                  probe_out: np.ndarray, ft: dict) -> dict[str, np.ndarray]:
    """The new member's out-of-fold tables, and its reported ensembles (each corpus at its own nested weight)."""
    out = {"finetuned_corpus_out": new["corpus_out"], "finetuned_corpus_out_clean": clean["corpus_out"],
           "finetuned_ravdess_5fold": new["ravdess_5fold"]}
    ens = np.full_like(new["corpus_out"], np.nan)
    for c, r in ft["corpus_out"].items():
        if r.get("ensemble"):
            m = table.corpora == c
            ens[m] = geometric(new["corpus_out"][m], probe_out[m], r["ensemble"]["weight"])
    out["finetuned_corpus_out_ensemble"] = ens
    w = ft.get("decision", {}).get("probe_weight")
    five = np.full_like(ens, np.nan)
    if w is not None:
        rav = table.corpora == "ravdess"
        five[rav] = geometric(new["ravdess_5fold"][rav], probe_five[rav], w)
    out["finetuned_ravdess_5fold_ensemble"] = five
    return out


def ship_stage(args: argparse.Namespace, table: Table, report: dict) -> str:
    """Fit the probe's head on every clip of the three corpora with the recipe and write it into the shipped
    voice_probe.pt, whose personal-baseline head (RAVDESS, ``train voice-probe``) it keeps (module docstring)."""
    path = Path(args.weights or WEIGHTS_DIR) / "voice_probe.pt"
    probe, old = load_checkpoint(path)
    if args.whisper and probe.cfg != build_probe(args.whisper).cfg:
        raise SystemExit(f"{path} reads another encoder than --whisper {args.whisper}: ship its baseline head first "
                         "(train voice-probe)")
    every = np.ones(len(table.labels), bool)
    shipped = report["shipped"]
    recipe, loss = shipped["recipe"], shipped.get("loss", LOSS)
    variants = RECIPES[recipe]
    probe.head = table.fit_probe(every, variants, probe.cfg.n_features, loss)
    counts = {c: int((table.corpora == c).sum()) for c in THREE}
    old = {k: v for k, v in old.items() if k not in ("sha256", "cv")}  # "cv": the replaced head's figures
    meta = old | {
        "data": "RAVDESS speech actors 01-20 ({ravdess} clips), URDU ({urdu}), TurEV-DB ({turev})".format(**counts),
        "recipe": recipe, "loss": loss, "variants": list(variants), "corpus_classes": CORPUS_CLASSES,
        "ensemble_weight": shipped["probe_weight"], "c": PROBE_C, "temperature": shipped["temperature"],
        "ravdess_5fold": shipped["ravdess_5fold"], "command": report["command"],
        "baseline_head": "kept from train voice-probe (RAVDESS actors 01-20; reports/voice_probe_cv.json)"}
    digest = save_checkpoint(path, "voice_probe", probe, meta, keep_fp32=("head.", "baseline_head."))
    log.info("wrote voice_probe.pt (%s): probe weight %.2f, temperature %.3f", digest[:12], shipped["probe_weight"],
             shipped["temperature"])
    return digest


COMMAND = "python -m emotion_core train voice-corpora --data ../shared/data --out runs/corpora"
FT_COMMAND = ("python -m emotion_core train voice-finetune --data ../shared/data --out runs/finetune --device cuda "
              "(runs urdu-out, turev-out, ravdess-out, fold0-fold4, final and the three NAME:clean), then "
              "python -m emotion_core train voice-corpora --data ../shared/data --out runs/corpora "
              "--finetuned runs/finetune")


def run_command(args: argparse.Namespace, recipe: str, loss: str = LOSS) -> str:
    """The command that reproduces this run, as the report records it (``COMMAND`` for the default run)."""
    parts = [COMMAND.replace("--out runs/corpora", f"--out {args.out}")]
    if args.whisper:
        parts.append(f"--whisper {args.whisper}")
    if recipe != RECIPE:
        parts.append(f"--recipe '{recipe}'")
    if loss != LOSS:
        parts.append(f"--loss {loss}")
    if args.reports:
        parts.append(f"--reports {args.reports}")
    if not args.final:
        parts.append("--no-final")
    return " ".join(parts)


def main(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    reports = Path(args.reports or REPORTS_DIR)
    recipe = getattr(args, "recipe", None) or RECIPE
    if recipe not in RECIPES:
        raise SystemExit(f"unknown recipe {recipe!r}: one of {', '.join(RECIPES)}")
    variants = RECIPES[recipe]  # the default recipe's are every copy (VARIANTS)
    features_stage(args, out, variants)
    table = Table.load(out, variants)
    n_features = table.feats["clean"].shape[1]
    loss = getattr(args, "loss", None) or LOSS
    ev = evaluate_stage(table, n_features, recipe=recipe, loss=loss)
    command = run_command(args, recipe, loss)
    res = ev["results"] | {"command": command, "encoder": args.whisper or "tiny.en",
                           "protocol": ("one corpus out: trained on the other two corpora (all their clips), tested on "
                                        "every clip of the held-out one; RAVDESS 5-fold: actors 01-04, 05-08, 09-12, "
                                        "13-16, 17-20 held out in turn, URDU and TurEV-DB always in training. Accuracy "
                                        "and UAR take predictions among the test corpus's classes; accuracy_8way "
                                        "among all eight")}
    tables = ev["oof"]
    for runs in [Path(d) for d in (getattr(args, "finetuned", None) or "").split(",") if d]:
        variant = runs.name  # one recipe's runs per folder, named by it
        new, clean = finetuned_tables(table, runs), finetuned_tables(table, runs, "_clean")
        today = {c: res["corpus_out"][c]["today"] for c in ("urdu", "turev")}
        ft = finetuned_stage(table, new, clean, tables["corpus_out_probe"], tables["ravdess_5fold_probe"], today)
        ft["runs"] = {p.stem: json.loads(p.read_text()) for p in sorted(runs.glob("*.json"))}
        ft["command"] = FT_COMMAND
        res.setdefault("finetuned", {})[variant] = ft
        tables |= {f"{variant}:{k}": v for k, v in finetuned_oof(table, new, clean, tables["ravdess_5fold_probe"],
                                                                   tables["corpus_out_probe"], ft).items()}
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "voice_corpora.json").write_text(json.dumps(res, indent=2) + "\n")
    write_oof(table, tables, reports / "voice_corpora_oof.csv")
    write_ravdess_ensemble_oof(table, tables["ravdess_5fold_ensemble"], res["shipped"]["temperature"], REPORTS_DIR,
                               reports / "voice_ravdess_ensemble_oof.csv")
    print(json.dumps(summary(res), indent=2))
    better = shipping_gain(res)
    if args.final and better > 0:
        ship_stage(args, table, res)
    elif args.final:
        log.info("not shipped: one corpus out, the new ensemble's mean UAR on URDU and TurEV-DB is %.1f points "
                 "from today's (it must be higher, with RAVDESS 5-fold at or above %.0f %%)", 100 * better,
                 100 * MIN_RAVDESS_5FOLD)
    return 0


def shipping_gain(res: dict) -> float:
    """How much better the new ensemble reads the two other corpora than today's model (mean UAR, one
    corpus out, each corpus's weight chosen on the other); what ships must gain and keep RAVDESS."""
    others = ("urdu", "turev")
    new = np.mean([res["corpus_out"][c]["ensemble"]["uar"] for c in others])
    today = np.mean([res["corpus_out"][c]["today"]["uar"] for c in others])
    return float(new - today) if res["shipped"]["ravdess_5fold"] >= MIN_RAVDESS_5FOLD else -1.0


def summary(res: dict) -> dict:
    """The headline figures of the report (what the model card's table shows)."""
    out = {}
    for c, r in res["corpus_out"].items():
        rows = {"today": r["today"], "probe": r["probe"][res["shipped"]["recipe"]], "ensemble": r.get("ensemble")}
        out[c] = {k: None if v is None else {m: v[m] for m in ("accuracy", "uar", "neutral_recall")}
                  for k, v in rows.items()}
    out["ravdess_5fold"] = {"today": res["ravdess_5fold"]["today"]["mean_accuracy"],
                            "shipped": res["shipped"]["ravdess_5fold"]}
    out["shipped"] = res["shipped"]
    return out
