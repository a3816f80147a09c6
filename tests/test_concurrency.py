"""Four app sessions analysing different clips at the same time: each gets its own correct result."""

import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SR, voiced_signal
from streamlit.testing.v1 import AppTest

from emotion_core.constants import EMOTIONS

pytestmark = pytest.mark.slow
APP = str(Path(__file__).resolve().parent.parent / "app.py")


def rss_mb() -> float:
    return int(next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmRSS")).split()[1]) / 1024


def test_four_sessions_at_once(media_dir: Path, tmp_path: Path, analyzer) -> None:
    start_mb = rss_mb()
    files = [media_dir / "talking.mp4", media_dir / "face.jpg", media_dir / "no_face.mp4"]
    sf.write(tmp_path / "other_voice.wav", voiced_signal(3.0, f0=220, seed=9), SR)
    files.append(tmp_path / "other_voice.wav")
    expected = {f.name: analyzer.analyze(f) for f in files}
    results: dict[str, tuple] = {}
    errors: list[BaseException] = []

    def session(f: Path) -> None:
        try:
            at = AppTest.from_file(APP, default_timeout=300).run()
            at.file_uploader(key="upload").set_value((f.name, f.read_bytes(), "application/octet-stream"))
            at.run()
            assert not at.exception, [e.value for e in at.exception]
            assert at.metric and at.dataframe, (f.name, [e.value for e in at.error], [w.value for w in at.warning])
            table = at.dataframe[0].value
            results[f.name] = (at.metric[0].value, table["Fusion"].to_numpy(), table["Face"].to_numpy(),
                               table["Voice"].to_numpy())
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=session, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors
    for name, (label, fused, face, voice) in results.items():
        exp = expected[name]
        assert label.split()[-1] == exp.label
        np.testing.assert_allclose(fused, exp.probs, atol=1e-6)
        for got, branch in ((face, exp.face), (voice, exp.voice)):
            if branch is None:
                assert np.isnan(got).all()
            else:
                np.testing.assert_allclose(got, branch.probs, atol=1e-6)
    assert len(results) == 4 and all(lbl.split()[-1] in EMOTIONS for lbl, *_ in results.values())
    # four sessions (results, explanations) and possibly a second copy of the models (the app's cache)
    assert rss_mb() - start_mb < 1200
