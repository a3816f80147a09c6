"""Sessions at the same time. The app serves each browser session in its own thread, all sharing the
one cached Analyzer (``st.cache_resource``); Grad-CAM hangs hooks on that shared model. Here four
threads do what four sessions do (analyse, Grad-CAM, LIME) at once and must get exactly what each
gets alone. The real-server version, with four browsers, is in ``test_browser.py``.

(AppTest cannot stand in for concurrent sessions: it swaps a process-wide mock Runtime in and out on
every run, so two AppTests running at once break each other, whatever the app does.)
"""

import threading
from pathlib import Path

import numpy as np
import pytest
from spread import within

from emotion_core.explain import explain_voice, face_cams

pytestmark = pytest.mark.slow


def session_work(analyzer, path: Path) -> dict:
    """What the Analyse page computes for one upload: the result, one Grad-CAM, one LIME panel."""
    res = analyzer.analyze(path, keep_audio=True)
    out = {"label": res.label, "probs": res.probs}
    kept = [f for f in (res.face.frames if res.face else []) if f.crop_rgb is not None]
    if kept:
        out["cam"] = face_cams(analyzer.models.face, kept[0].face_input[None], ["happy"])[0]
    if res.voice is not None:
        w = res.voice.windows[0]
        ex = explain_voice(analyzer.models.voice, res.audio, w.start, w.end, ["sad"], n_samples=32)
        out["lime"] = ex.weights["sad"]
    return out


@pytest.mark.numeric
def test_four_sessions_share_the_models(four_uploads: list[Path], analyzer) -> None:
    files = four_uploads
    alone = {f.name: session_work(analyzer, f) for f in files}
    assert sum("cam" in r for r in alone.values()) >= 2 and sum("lime" in r for r in alone.values()) >= 3

    together: dict[str, dict] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(files))

    def session(f: Path) -> None:
        try:
            start.wait()
            together[f.name] = session_work(analyzer, f)
        except BaseException as e:  # reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=session, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors
    assert together.keys() == alone.keys()
    for name, exp in alone.items():
        got = together[name]
        assert got.keys() == exp.keys() and got["label"] == exp["label"], name
        for key in exp.keys() - {"label"}:
            assert within("concurrent_vs_alone", np.abs(np.asarray(got[key]) - exp[key]).max()), (name, key)
