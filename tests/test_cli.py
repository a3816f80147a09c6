"""The `analyze` command-line contract (README), on generated clips."""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emotion_core.constants import EMOTIONS

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> tuple[int, list[dict], str]:
    p = subprocess.run([sys.executable, "-m", "emotion_core", "analyze", *args, "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    lines = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    return p.returncode, lines, p.stderr


def run_here(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict], str]:
    """``run`` through the same main entry in this process (no 6-s start of a process of its own): for what the
    command computes; the process's own contract (stdout lines, exit status) is ``batch``'s."""
    from emotion_core.__main__ import main

    capsys.readouterr()
    try:
        rc = main(["analyze", *args, "--json"])
    except SystemExit as e:  # argparse refuses an option
        rc = int(e.code or 0)
    out = capsys.readouterr()
    return rc, [json.loads(line) for line in out.out.splitlines() if line.strip()], out.err


def check_probs(p: dict) -> None:
    assert list(p) == list(EMOTIONS)
    assert math.isclose(sum(p.values()), 1, abs_tol=1e-6)


@pytest.fixture(scope="module")
def batch(media_dir: Path) -> tuple[int, list[dict], str, list[str]]:
    names = ["talking.mp4", "text.mp4", "no_face.mp4", "silent_audio.mp4", "voice.wav", "face.jpg",
             "no_audio.mp4", "empty.mp4", "truncated.mp4", "silence.wav", "empty_audio.wav"]
    rc, lines, err = run(*(str(media_dir / n) for n in names))
    return rc, lines, err, names


def test_one_line_per_input_in_order(batch) -> None:
    rc, lines, err, names = batch
    assert [Path(d["file"]).name for d in lines] == names
    assert rc == 2  # some inputs were rejected
    assert "Traceback" not in err


def test_video_with_face_and_voice(batch) -> None:
    d = batch[1][0]
    assert d["error"] is None and d["label"] in EMOTIONS
    check_probs(d["probs"])
    face, voice = d["modalities"]["face"], d["modalities"]["voice"]
    check_probs(face["probs"])
    check_probs(voice["probs"])
    assert face["frames_used"] >= 10 and face["probs"]["calm"] == 0
    assert d["agreement"] in {"agree", "disagree", "uncertain"}
    assert "untrained" not in d


@pytest.mark.parametrize(("i", "missing", "words"), [
    (2, "face", "no face"), (3, "voice", "silent"), (4, "face", None), (5, "voice", "still image"),
    (6, "voice", "no audio track"),
])
def test_missing_modality_is_null_with_a_warning(batch, i: int, missing: str, words: str | None) -> None:
    d = batch[1][i]
    assert d["error"] is None and d["modalities"][missing] is None
    other = "voice" if missing == "face" else "face"
    assert d["modalities"][other] is not None
    check_probs(d["probs"])
    if words:
        assert any(words in w for w in d["warnings"])


@pytest.mark.parametrize("i", [1, 7, 8])
def test_bad_files_get_an_error_line(batch, i: int) -> None:
    d = batch[1][i]
    assert d["error"] and d["label"] is None and d["probs"] is None
    assert "Traceback" not in d["error"]


def test_silent_audio_gives_no_answer(batch) -> None:
    d = batch[1][9]
    assert d["error"] is None and d["label"] is None and d["probs"] is None
    assert any("silent" in w for w in d["warnings"])


def test_zero_length_audio_is_an_error(batch) -> None:
    assert "too small" in batch[1][10]["error"]


def test_result_depends_on_the_input_alone(media_dir: Path, tmp_path: Path, batch, capsys: pytest.CaptureFixture[str]) -> None:
    renamed = tmp_path / "zz_other_name.mp4"
    shutil.copy(media_dir / "talking.mp4", renamed)
    rc, lines, _ = run_here(capsys, str(renamed))
    assert rc == 0
    assert lines[0]["probs"] == pytest.approx(batch[1][0]["probs"], abs=1e-6)


def test_directory_and_crop_is_face(media_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from conftest import face_frame
    from PIL import Image

    Image.fromarray(face_frame()[40:320, 180:460]).resize((48, 48)).convert("L").save(tmp_path / "crop.png")
    shutil.copy(media_dir / "voice.wav", tmp_path / "b.wav")
    (tmp_path / "readme.txt").write_text("ignored: not media")
    rc, lines, _ = run_here(capsys, str(tmp_path), "--crop-is-face")
    assert rc == 0 and [Path(d["file"]).name for d in lines] == ["b.wav", "crop.png"]
    face = lines[1]["modalities"]["face"]
    assert face["frames_used"] == 1
    check_probs(face["probs"])


def test_an_unforeseen_failure_is_a_message_not_a_traceback(media_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from emotion_core import analysis

    a = analysis.Analyzer()
    monkeypatch.setattr(analysis, "load_audio", lambda info: (_ for _ in ()).throw(RuntimeError("boom")))
    res = a.analyze(media_dir / "voice.wav")
    assert res.error and "failed unexpectedly (RuntimeError)" in res.error and res.probs is None


def test_frame_rate_option(media_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, (line,), _ = run_here(capsys, str(media_dir / "talking.mp4"), "--frame-rate", "2.5")
    assert rc == 0 and line["modalities"]["face"]["frames_sampled"] == 8  # 3 s at 2.5 fps (5 fps: 15)
    assert all(abs(f["t"] * 2.5 - round(f["t"] * 2.5)) < 1e-6 for f in line["modalities"]["face"]["frames"])
    rc, lines, err = run_here(capsys, str(media_dir / "talking.mp4"), "--frame-rate", "100")
    assert rc == 2 and not lines and "frames per second" in err and "Traceback" not in err
