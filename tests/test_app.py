"""Every page through streamlit's AppTest; uploads go through the real file uploader widget."""

import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from emotion_core.registry import VOICE_OOF

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")


def page(name: str | None = None, **env: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=240)
    if name:
        at.switch_page(f"pages/{name}.py")
    return at


def no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def test_analyse_page_without_upload() -> None:
    at = page().run()
    no_exceptions(at)
    assert at.title[0].value == "Analyse a recording"
    assert any("Nothing analysed yet" in i.value for i in at.info)


@pytest.fixture(scope="module")
def analysed(media_dir: Path) -> AppTest:
    at = page().run()
    at.file_uploader(key="upload").set_value(("talking.mp4", (media_dir / "talking.mp4").read_bytes(), "video/mp4"))
    return at.run()


def test_upload_gives_result_tables_and_explanations(analysed: AppTest) -> None:
    at = analysed
    no_exceptions(at)
    labels = {m.label: m.value for m in at.metric}
    assert labels["Expressed emotion"].split()[-1] in {"neutral", "calm", "happy", "sad", "angry", "fearful",
                                                       "disgust", "surprised"}
    assert labels["Confidence (calibrated)"].endswith("%")
    table = at.dataframe[0].value
    assert list(table.columns) == ["Emotion", "Face", "Voice", "Fusion"] and len(table) == 8
    assert abs(table["Fusion"].sum() - 1) < 1e-6
    assert at.get("image"), "the face map is shown"
    assert at.selectbox(key="cam_m").value == "occlusion", "the default face map is the one that passes deletion"
    captions = [img.caption for i in at.get("image") for img in i.proto.imgs]
    assert any(c.startswith("occlusion for") for c in captions), captions
    assert any("Red cells" in c.value for c in at.caption), "the LIME panel is shown"
    assert [b.proto.label for b in at.get("download_button")] == ["Results (JSON)", "Per-frame and per-window "
                                                                   "probabilities (CSV)", "Report (HTML)", "ELAN (.eaf)",
                                                                   "Praat (.TextGrid)"]


def test_changing_the_cam_target_and_method(analysed: AppTest) -> None:
    at = analysed
    at.selectbox(key="cam_t").set_value("sad")
    at.selectbox(key="cam_m").set_value("gradcam++")
    at.run()
    no_exceptions(at)
    captions = [img.caption for i in at.get("image") for img in i.proto.imgs]
    assert any(c.startswith("gradcam++ for 'sad'") for c in captions), captions


def test_bad_upload_shows_a_human_error(media_dir: Path) -> None:
    at = page().run()
    at.file_uploader(key="upload").set_value(("notes.mp4", b"this is text, not a video\n" * 400, "video/mp4"))
    at.run()
    no_exceptions(at)
    assert at.error and "could not be read" in at.error[0].value


def test_photo_upload_face_only(media_dir: Path) -> None:
    at = page().run()
    at.file_uploader(key="upload").set_value(("face.jpg", (media_dir / "face.jpg").read_bytes(), "image/jpeg"))
    at.run()
    no_exceptions(at)
    assert any("still image has no voice" in w.value for w in at.warning)
    assert any("No voice to explain" in c.value for c in at.caption)


def test_misclassifications_page() -> None:
    at = page("misclassifications").run()
    no_exceptions(at)
    assert {m.label for m in at.metric} >= {"Accuracy", "Macro F1"}
    shipped = pd.read_csv(ROOT / "reports" / VOICE_OOF)
    assert at.radio[0].value.startswith("Voice: RAVDESS")  # the shipped ensemble's errors come first
    assert abs(float(at.metric[1].value.rstrip("%")) - 100 * (shipped.pred == shipped.true).mean()) < 0.1
    at.radio[0].set_value("Face: FER2013 PrivateTest, labelled by the majority of ten annotators (FER+)").run()
    no_exceptions(at)
    assert float(at.metric[1].value.rstrip("%")) > 80, "the shipped face model learnt the ten annotators' majority"
    at.radio[0].set_value("Face: FER2013 PrivateTest, FER2013's own single-rater labels").run()
    no_exceptions(at)
    assert float(at.metric[1].value.rstrip("%")) > 55


def test_misclassifications_without_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMOTION_DATA_DIR", "/nonexistent")
    at = page("misclassifications").run()
    no_exceptions(at)
    assert os.environ["EMOTION_DATA_DIR"] == "/nonexistent"


def test_inference_tables_page() -> None:
    at = page("inference_tables").run()
    no_exceptions(at)
    assert at.title[0].value == "Inference tables"
    subheaders = [h.value for h in at.subheader]
    assert subheaders[0].startswith("Face: share of the occlusion map"), subheaders
    faith = at.dataframe[-1].value
    assert {"face", "face_occlusion", "voice", "voice_unseen"} <= set(faith["modality"])


def test_model_card_page() -> None:
    at = page("model_card").run()
    no_exceptions(at)
    assert any("RAVDESS" in m.value for m in at.markdown)


@pytest.mark.shared
def test_misclassification_explanations_of_stored_inputs() -> None:
    """The helpers the page calls for a chosen error: Grad-CAM on the FER image, LIME on the clip."""
    from conftest import SHARED

    from pages.misclassifications import face_error_cam, voice_error_lime

    img = next((SHARED / "fer2013" / "test" / "sad").glob("PrivateTest_*.jpg"))
    assert face_error_cam(str(img), "fer", "sad").shape == (160, 160, 3)
    film = next((SHARED / "sfew" / "Val" / "Sad").glob("*.png"))
    assert face_error_cam(str(film), "sfew", "sad").shape == (160, 160, 3)
    clip = next((SHARED / "ravdess-speech-16k").rglob("*.flac"))
    ex = voice_error_lime(str(clip), "angry")
    assert ex.heatmap("angry").shape == ex.mel.shape


def test_choosing_a_moment_moves_both_panels(tmp_path: Path) -> None:
    from conftest import face_frame, voiced_signal, write_video

    clip = write_video(tmp_path / "six.mp4", [face_frame(shift=(i % 5) * 4) for i in range(60)], 10,
                       voiced_signal(6.0, seed=4))
    at = page().run()
    at.file_uploader(key="upload").set_value(("six.mp4", clip.read_bytes(), "video/mp4")).run()
    no_exceptions(at)
    moment = at.selectbox(key="moment")
    assert len(moment.options) == 2  # 0-4 s and 2-6 s
    moment.set_value(1).run()
    no_exceptions(at)
    assert at.selectbox(key="lime_w").value == 1

    def cam_time() -> float:
        caption = next(img.caption for i in at.get("image") for img in i.proto.imgs)
        return float(caption.split(" at ")[1].split(" s")[0])

    assert 2.0 <= cam_time() <= 6.0
    at.selectbox(key="moment").set_value(0).run()
    assert at.selectbox(key="lime_w").value == 0 and cam_time() <= 4.0


def test_baseline_from_a_separate_recording(media_dir: Path) -> None:
    at = page().run()
    at.file_uploader(key="upload").set_value(("talking.mp4", (media_dir / "talking.mp4").read_bytes(), "video/mp4"))
    at.run()
    plain_voice = at.dataframe[0].value["Voice"].to_numpy()
    at.radio(key="bl_mode").set_value("A separate recording of this person").run()
    no_exceptions(at)
    at.file_uploader(key="baseline_upload").set_value(
        ("usual.wav", (media_dir / "voice.wav").read_bytes(), "audio/wav")).run()
    no_exceptions(at)
    note = [c.value for c in at.caption if c.value.startswith("Voice read relative to the baseline (usual.wav")]
    assert note, [c.value for c in at.caption]
    assert any("only 3.0 s of speech" in w.value or "s of speech in the baseline" in w.value for w in at.warning)
    based_voice = at.dataframe[0].value["Voice"].to_numpy()
    assert abs(based_voice.sum() - 1) < 1e-6 and not (abs(based_voice - plain_voice) < 1e-9).all()
    assert any("Red cells" in c.value for c in at.caption), "LIME explains the baseline-relative model"


def test_baseline_stretch_and_unusable_baseline(media_dir: Path) -> None:
    at = page().run()
    at.file_uploader(key="upload").set_value(("talking.mp4", (media_dir / "talking.mp4").read_bytes(), "video/mp4"))
    at.run()
    at.radio(key="bl_mode").set_value("A stretch of this recording").run()
    no_exceptions(at)
    assert at.slider(key="bl_span").value == (0.0, 3.0)
    assert any(c.value.startswith("Voice read relative to the baseline (talking.mp4 0-3 s") for c in at.caption)
    # a silent baseline is refused with a human message and the plain analysis is shown
    at.radio(key="bl_mode").set_value("A separate recording of this person").run()
    at.file_uploader(key="baseline_upload").set_value(
        ("quiet.wav", (media_dir / "silence.wav").read_bytes(), "audio/wav")).run()
    no_exceptions(at)
    assert any("without a baseline" in e.value for e in at.error)
    assert not any(c.value.startswith("Voice read relative") for c in at.caption)
    assert at.metric, "the plain result is still shown"


def test_a_long_recording_is_shown_as_a_session(session_video: Path) -> None:
    """The session view's numbers are the session summary's, and a stretch's button moves the panels."""
    import numpy as np

    from emotion_core.constants import EMOTIONS
    from emotion_core.session import SOURCES

    at = page().run()
    at.file_uploader(key="upload").set_value(("session.mp4", session_video.read_bytes(), "video/mp4")).run()
    deadline = time.monotonic() + 240
    while "The session" not in [s.value for s in at.subheader] and time.monotonic() < deadline:
        no_exceptions(at)  # a long analysis shows its progress while it runs in its thread
        time.sleep(1)
        at.run()
    no_exceptions(at)
    assert "The session" in [s.value for s in at.subheader]
    assert at.get("plotly_chart"), "the emotion map is drawn"
    from pages.ui.common import Upload, results, upload_key

    stored = results().get(upload_key(Upload(session_video.read_bytes(), "session.mp4")))
    assert stored is not None, "stored once"
    expected = stored.summary()  # that the app's analysis is the command line's: test_robustness (app outcomes)
    shares = next(d.value for d in at.dataframe if list(d.value.columns) == ["emotion", *SOURCES])
    for s in SOURCES:
        np.testing.assert_allclose(shares[s].to_numpy(), [expected.time_share[s][e] for e in EMOTIONS], atol=1e-6)
    buttons = [b for b in at.button if (b.key or "").startswith(("segment_", "disagree_"))]
    assert len(buttons) == len(expected.segments[:30]) + len(expected.disagreements[:30]) > 0
    last = buttons[-1]
    start, end = (float(x) for x in last.label.split(" s ")[0].split("–"))
    last.click().run()
    no_exceptions(at)
    caption = next(img.caption for i in at.get("image") for img in i.proto.imgs)
    assert start - 1e-6 <= float(caption.split(" at ")[1].split(" s")[0]) <= end + 1e-6, caption

    # a coding of this recording: the tier is chosen, then each segment is scored from this analysis
    from test_coding import elan_document

    from emotion_core.coding import read_labels
    from emotion_core.own_data import evaluate_result

    at.file_uploader(key="coding_file").set_value(("coded.eaf", elan_document().encode(),
                                                   "application/xml")).run()
    no_exceptions(at)
    assert at.selectbox(key="coding_tier").options == ["emotion", "notes", "certainty"]
    at.selectbox(key="coding_tier").set_value("emotion").run()
    no_exceptions(at)
    assert not at.error, [e.value for e in at.error]
    table = next(d.value for d in at.dataframe if "coded" in d.value.columns)
    assert len(table) == 14 and list(table["coded"])[:3] == ["happy", "sad", "angry"] and table["start"][2] == 5.5
    from pages.ui.common import memory_dir

    kept = Path(memory_dir() or tempfile.gettempdir())
    assert not list(kept.glob("emotion-coding-*")), "the coding file is read and dropped"
    f = session_video.parent / "coded.eaf"
    f.write_text(elan_document(media=str(session_video)))
    from emotion_core.analysis import Analyzer

    items = read_labels(f, tier="emotion")
    own_voice = evaluate_result(stored, items, "fused", span_reader=Analyzer()).rows()  # the default: own audio
    assert [r["predicted"] for r in own_voice] == list(table["model"].replace("–", ""))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Segments scored"] == "14"
    at.radio(key="coding_voice").set_value("windows").run()
    no_exceptions(at)
    expected_report = evaluate_result(stored, items, "fused").to_dict()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Agreement"] == f"{expected_report['accuracy']:.0%}"
    fig = next(c for c in at.get("plotly_chart") if '"coded"' in c.proto.spec)
    assert '"happy"' in fig.proto.spec  # the coded row above the map
    at.file_uploader(key="coding_file").set_value(("cut.eaf", elan_document().encode()[:900], "application/xml")).run()
    no_exceptions(at)
    assert [e.value for e in at.error] == ["cut.eaf: not a readable ELAN file (it may be truncated, or not ELAN's XML)."]


def test_a_long_analysis_can_be_cancelled_and_nothing_is_kept(session_video: Path) -> None:
    from pages.ui.common import Upload, results, upload_key

    at = page().run()
    data = session_video.read_bytes()
    at.file_uploader(key="upload").set_value(("cancel_me.mp4", data, "video/mp4")).run()
    no_exceptions(at)
    assert any(p.proto.text.endswith(("left", "%")) for p in at.get("progress")), "progress with stage and share"
    at.button(key="cancel").click().run()
    deadline = time.monotonic() + 120
    while not any("was cancelled" in i.value for i in at.info) and time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()
    no_exceptions(at)
    assert any("was cancelled" in i.value for i in at.info)
    assert results().get(upload_key(Upload(data, "cancel_me.mp4"))) is None
