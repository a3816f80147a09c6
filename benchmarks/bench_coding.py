"""What scoring coded segments of one long recording costs against scoring each clip on its own.

A "session" is made of one speaker's labelled clips laid end to end (``--gap`` seconds of room noise
between them); its coding is the clips' spans with their labels, written as a segment CSV and as an
ELAN file (pympi). Then ``evaluate data`` runs three ways, in this process, with the shipped model:

* each clip as a file of its own (the old whole-file protocol);
* the session with the segment CSV, each segment's voice from the 4-s windows overlapping it
  (``--segment-voice windows``); and with the ELAN file (they must give the same report);
* the session with the segment CSV, each segment's voice read from its own audio (``span``, the default);

and the script prints the accuracy of each, how often a segment's prediction equals its clip's own,
how many segments are shorter than one voice window, and the time taken.

    python benchmarks/bench_coding.py --data ../shared/data [--corpus urdu|turev|ravdess] [--clips 24]

The voice model's member 2 was trained on every URDU and TurEV-DB clip and on RAVDESS actors 01-20, so
the accuracies here are not held-out figures: the point is the *difference* between segment-level and
clip-level scoring (the context a short segment hears from its neighbours).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emotion_core.analysis import Analyzer  # noqa: E402
from emotion_core.coding import read_labels  # noqa: E402
from emotion_core.constants import SAMPLE_RATE, VOICE_WINDOW_S  # noqa: E402
from emotion_core.media import load_audio, probe  # noqa: E402
from emotion_core.own_data import evaluate_files  # noqa: E402
from emotion_core.tiers import ResultTiers, eaf_text  # noqa: E402
from emotion_core.training.corpora import CORPUS_FOLDERS, find_corpus  # noqa: E402


def session_of(clips: list, folder: Path, gap: float, seed: int) -> tuple[Path, list[tuple[float, float, str]]]:
    """The clips end to end with ``gap`` s of faint noise between them: (the wav, the coded spans)."""
    rng = np.random.default_rng(seed)
    parts, spans, t = [], [], 0.0
    for c in clips:
        audio = load_audio(probe(c.path))
        noise = (rng.standard_normal(int(gap * SAMPLE_RATE)) * 1e-4).astype(np.float32)
        spans.append((round(t, 3), round(t + len(audio) / SAMPLE_RATE, 3), c.label))
        parts += [audio, noise]
        t += (len(audio) + len(noise)) / SAMPLE_RATE
    path = folder / "session.wav"
    sf.write(path, np.concatenate(parts), SAMPLE_RATE)
    return path, spans


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--corpus", default="urdu", choices=["urdu", "turev", "ravdess"])
    ap.add_argument("--clips", type=int, default=24, help="clips in the session (round robin over emotions)")
    ap.add_argument("--gap", type=float, default=0.5, help="seconds between clips")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    clips = find_corpus(args.corpus, Path(args.data) / CORPUS_FOLDERS[args.corpus])
    # the speaker with the most emotions, then the most clips: a session with something to tell apart
    speaker = max({c.speaker for c in clips}, key=lambda sp: (len({c.label for c in clips if c.speaker == sp}),
                                                              sum(c.speaker == sp for c in clips), sp))
    mine = [c for c in clips if c.speaker == speaker]
    rng = np.random.default_rng(args.seed)
    by_label: dict[str, list] = {}
    for c in rng.permutation(len(mine)):
        by_label.setdefault(mine[c].label, []).append(mine[c])
    chosen = []
    while len(chosen) < args.clips and any(by_label.values()):
        for label in sorted(by_label):
            if by_label[label] and len(chosen) < args.clips:
                chosen.append(by_label[label].pop())
    analyzer = Analyzer(device="cpu")
    with tempfile.TemporaryDirectory(prefix="bench-coding-") as d:
        folder = Path(d)
        session, spans = session_of(chosen, folder, args.gap, args.seed)
        (folder / "clips.csv").write_text("path,label\n" + "".join(f"{c.path},{c.label}\n" for c in chosen))
        (folder / "segments.csv").write_text("path,start,end,label\n" + "".join(f"session.wav,{s},{e},{x}\n"
                                                                                for s, e, x in spans))
        duration = float(probe(session).duration or 0)
        tiers = ResultTiers({"coder": [(round(s * 1000), round(e * 1000), x) for s, e, x in spans]},
                            round(duration * 1000), str(session))
        (folder / "session.eaf").write_text(eaf_text(tiers, folder / "session.eaf"))
        out = {}
        for name, labels, mode in (("clips", "clips.csv", "windows"), ("segments_csv", "segments.csv", "windows"),
                                   ("segments_eaf", "session.eaf", "windows"), ("segments_span", "segments.csv", "span")):
            t0 = time.perf_counter()
            report = evaluate_files(analyzer, read_labels(folder / labels), "voice", segment_voice=mode)
            out[name] = (report, time.perf_counter() - t0)
    clip_rep, seg_rep, span_rep = out["clips"][0], out["segments_csv"][0], out["segments_span"][0]
    same_as_eaf = seg_rep.to_dict() == out["segments_eaf"][0].to_dict()
    # per item (all three list the same clips in the same order): predictions where both were scored
    clip_pred, seg_pred, span_pred = ([r["predicted"] or None for r in rep.rows()] for rep in (clip_rep, seg_rep,
                                                                                              span_rep))
    both = np.array([a is not None and b is not None for a, b in zip(clip_pred, seg_pred, strict=True)])
    lengths = np.array([e - s for s, e, _ in spans])
    short = (lengths < VOICE_WINDOW_S)[both]
    agree = np.array([a == b for a, b in zip(clip_pred, seg_pred, strict=True)])[both]
    span_agree = np.array([a == b for a, b, ok in zip(clip_pred, span_pred, both, strict=True) if ok])
    print(json.dumps({
        "corpus": args.corpus, "speaker": speaker, "segments": len(spans), "session_s": round(duration, 1),
        "segment_s_median": round(float(np.median(lengths)), 2), "shorter_than_a_window": int(short.sum()),
        "labels": dict(Counter(x for *_, x in spans)),
        "predicted_segments": dict(Counter(p for p in seg_pred if p)),
        "scored_clips_alone": int(sum(p is not None for p in clip_pred)),
        "accuracy_clips_alone": round(clip_rep.to_dict()["accuracy"], 4),
        "accuracy_segments": round(seg_rep.to_dict()["accuracy"], 4),
        "segment_prediction_equals_clip_prediction": round(float(agree.mean()), 4),
        "equal_when_shorter_than_a_window": round(float(agree[short].mean()), 4) if short.any() else None,
        "equal_when_a_window_or_longer": round(float(agree[~short].mean()), 4) if (~short).any() else None,
        "accuracy_segments_span": round(span_rep.to_dict()["accuracy"], 4),
        "span_prediction_equals_clip_prediction": round(float(span_agree.mean()), 4),
        "eaf_report_equals_csv_report": same_as_eaf,
        "seconds": {k: round(v[1], 1) for k, v in out.items()},
        "note": "member 2 was trained on these clips: compare the two protocols, not the accuracies with held-out ones",
    }, indent=1))


if __name__ == "__main__":
    main()
