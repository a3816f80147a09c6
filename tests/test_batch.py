"""Batch analysis: complete results for a mixed folder, failures reported, resumable, and the same
output from the local worker pool and from a local Ray instance."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import face_frame, voiced_signal, write_video

from emotion_core.batch import ResultStore, job_for, run_batch
from emotion_core.constants import EMOTIONS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def study(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Good, bad and long recordings in nested folders."""
    d = tmp_path_factory.mktemp("study")
    (d / "s01").mkdir()
    (d / "s02").mkdir()
    shutil.copy(media_dir / "talking.mp4", d / "s01" / "talking.mp4")
    shutil.copy(media_dir / "voice.wav", d / "s01" / "voice.wav")
    shutil.copy(media_dir / "text.mp4", d / "s02" / "text.mp4")       # bad: not a video
    shutil.copy(media_dir / "truncated.mp4", d / "s02" / "cut.mp4")  # bad: cut short
    frames = [face_frame(shift=(i % 7) * 3) for i in range(120)]
    write_video(d / "s02" / "long.mp4", frames, fps=10, audio=voiced_signal(12.0, seed=3))  # 12 s: several windows
    return d


def _tables(out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_parquet(out / "windows.parquet"), pd.read_parquet(out / "recordings.parquet")


@pytest.fixture(scope="module")
def local_run(study: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("results")
    return out, run_batch([study], out, workers=2, csv=True)


def test_mixed_folder_complete_with_failures_reported(local_run: tuple[Path, dict], study: Path) -> None:
    out, stats = local_run
    win, rec = _tables(out)
    assert stats["recordings"] == 5 and stats["analysed"] == 5 and stats["failed"] == 2
    assert sorted(Path(f).name for f in rec["file"]) == ["cut.mp4", "long.mp4", "talking.mp4", "text.mp4", "voice.wav"]
    bad = rec[rec["status"] == "error"]
    assert sorted(Path(f).name for f in bad["file"]) == ["cut.mp4", "text.mp4"]
    assert bad["error"].str.len().min() > 20  # a human message, not an empty cell
    ok = rec[rec["status"] == "ok"].set_index(rec[rec["status"] == "ok"]["file"].map(lambda f: Path(f).name))
    assert ok.loc["long.mp4", "n_windows"] >= 5 and ok.loc["long.mp4", "duration_s"] > 11
    # one row per timeline window, probabilities that sum to one, windows covering the recording
    assert len(win) == int(ok["n_windows"].sum())
    assert not win.duplicated(["file", "start"]).any()
    long = win[win["file"].str.endswith("long.mp4")]
    assert long["start"].min() == 0 and long["end"].max() >= 11.5
    emotions = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    assert np.allclose(win[emotions].sum(1), 1, atol=1e-6)
    assert set(win["label"]) <= set(emotions)
    assert (out / "windows.csv").exists() and (out / "recordings.csv").exists()


def test_rerun_skips_everything_and_changes_nothing(local_run: tuple[Path, dict], study: Path) -> None:
    out, _ = local_run
    before = _tables(out)
    stats = run_batch([study], out, workers=2)
    assert stats["analysed"] == 0 and stats["skipped"] == 5
    after = _tables(out)
    for a, b in zip(before, after, strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_interrupted_run_resumes_without_redoing(study: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    seen: list[str] = []

    def stop_after_two(part: dict) -> None:
        seen.append(part["summary"]["file"])
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch([study], out, workers=1, on_part=stop_after_two)
    done = {p.name: p.stat().st_mtime_ns for p in (out / "parts").glob("*.json")}
    assert len(done) == 2
    redone: list[str] = []
    stats = run_batch([study], out, workers=1, on_part=lambda p: redone.append(p["summary"]["file"]))
    assert stats["skipped"] == 2 and stats["analysed"] == 3
    assert not set(redone) & set(seen)
    assert all((out / "parts" / n).stat().st_mtime_ns == t for n, t in done.items())
    win, rec = _tables(out)
    assert len(rec) == 5 and not rec["file"].duplicated().any() and not win.duplicated(["file", "start"]).any()


def test_changed_file_is_redone_in_place(media_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    f = src / "voice.wav"
    shutil.copy(media_dir / "voice.wav", f)
    out = tmp_path / "results"
    run_batch([src], out, workers=1)
    assert ResultStore(out).is_done(job_for(f))
    shutil.copy(media_dir / "silence.wav", f)  # same path, new content
    assert not ResultStore(out).is_done(job_for(f))
    stats = run_batch([src], out, workers=1)
    assert stats["analysed"] == 1
    _, rec = _tables(out)
    assert len(rec) == 1 and "silent" in rec.loc[0, "warnings"] and rec.loc[0, "label"] is None


def test_missing_input_is_a_reported_failure(tmp_path: Path) -> None:
    stats = run_batch([tmp_path / "nowhere.mp4"], tmp_path / "out", workers=1)
    rec = pd.read_parquet(tmp_path / "out" / "recordings.parquet")
    assert stats["failed"] == 1 and "no such file" in rec.loc[0, "error"]


def test_damaged_part_is_redone(media_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    run_batch([media_dir / "voice.wav"], out, workers=1)
    part = next((out / "parts").glob("*.json"))
    part.write_text(part.read_text()[:50])  # e.g. a disk that filled up mid-write elsewhere
    assert run_batch([media_dir / "voice.wav"], out, workers=1)["analysed"] == 1
    assert json.loads(part.read_text())["summary"]["status"] == "ok"


def test_ray_output_equals_local_output(local_run: tuple[Path, dict], study: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    out_local, _ = local_run
    out_ray = tmp_path / "ray"
    stats = run_batch([study], out_ray, workers=2, use_ray=True)
    assert stats["engine"] == "ray" and stats["analysed"] == 5
    for a, b in zip(_tables(out_local), _tables(out_ray), strict=True):
        pd.testing.assert_frame_equal(a.drop(columns=["processing_s"], errors="ignore"),
                                      b.drop(columns=["processing_s"], errors="ignore"), check_exact=False, atol=1e-6)


def test_baseline_span_reads_each_recording_against_its_own_start(media_dir: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from emotion_core.__main__ import main

    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(media_dir / "talking.mp4", src / "session.mp4")
    out = tmp_path / "out"
    assert main(["batch", str(src), "--out", str(out), "--workers", "1"]) == 0
    plain = pd.read_parquet(out / "recordings.parquet").iloc[0]
    assert plain["baseline_span"] is None
    # the same output folder with a baseline period: the recording is redone, not skipped
    assert main(["batch", str(src), "--out", str(out), "--workers", "1", "--baseline-span", "0:3"]) == 0
    assert '"analysed": 1' in capsys.readouterr().out
    based = pd.read_parquet(out / "recordings.parquet")
    assert len(based) == 1 and based.iloc[0]["baseline_span"] == "0:3" and based.iloc[0]["status"] == "ok"
    assert "speech in the baseline" in based.iloc[0]["warnings"]
    voice = [f"voice_{e}" for e in EMOTIONS]
    assert not np.allclose(based.iloc[0][voice].to_numpy(float), plain[voice].to_numpy(float))
    assert main(["batch", str(src), "--out", str(out), "--baseline-span", "3:1"]) == 2
