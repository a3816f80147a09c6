"""The 'Your data' page (#14): labelled uploads evaluated, a profile built and used on the Analyse page."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest
from test_app import no_exceptions, page


def upload_zip(at: AppTest, labelled_zip: Path) -> AppTest:
    at.file_uploader(key="own_files").set_value([(labelled_zip.name, labelled_zip.read_bytes(), "application/zip")])
    return at.run()


def test_your_data_page_without_upload() -> None:
    at = page("your_data").run()
    no_exceptions(at)
    assert at.title[0].value == "Your data" and any("Nothing uploaded yet" in i.value for i in at.info)


def test_evaluate_build_a_profile_and_use_it_on_the_analyse_page(labelled_zip: Path, media_dir: Path) -> None:
    at = upload_zip(page("your_data").run(), labelled_zip)
    at.button(key="own_evaluate").click().run()
    no_exceptions(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Files scored"] == "6" and metrics["Accuracy"].endswith("%")
    assert any("Predictions among happy, sad" in c.value for c in at.caption)
    assert at.session_state["own_report"]["report"]["per_speaker"].keys() == {"p0", "p1"}
    at.button(key="own_adapt").click().run()
    no_exceptions(at)
    assert any("Profile 'my-group' fitted on" in s.value for s in at.success)
    info = at.session_state["voice_profile"]["info"]
    assert info["clips"] == {"happy": 3, "sad": 3} and info["labels_file"] == labelled_zip.name
    at.checkbox(key="own_use_profile").check().run()
    at.button(key="own_evaluate").click().run()
    assert at.session_state["own_report"]["report"]["profile"]["name"] == "my-group"

    at.switch_page("pages/analyse.py").run()
    at.file_uploader(key="upload").set_value(("voice.wav", (media_dir / "voice.wav").read_bytes(), "audio/wav")).run()
    plain = at.dataframe[0].value["Voice"].to_numpy()
    at.radio(key="profile_mode").set_value("Built on the 'Your data' page").run()
    no_exceptions(at)
    assert any("Voice read through the profile 'my-group'" in c.value for c in at.caption)
    profiled = at.dataframe[0].value["Voice"].to_numpy()
    assert abs(profiled.sum() - 1) < 1e-6 and not (abs(profiled - plain) < 1e-9).all()


def test_uploads_without_labels_get_a_message(media_dir: Path) -> None:
    at = page("your_data").run()
    at.file_uploader(key="own_files").set_value([("voice.wav", (media_dir / "voice.wav").read_bytes(), "audio/wav")])
    at.run()
    at.button(key="own_evaluate").click().run()
    no_exceptions(at)
    assert any("no labels file" in s.label for s in at.status)


def test_a_file_that_is_not_a_profile_is_refused_on_the_analyse_page(media_dir: Path) -> None:
    at = page().run()
    at.file_uploader(key="upload").set_value(("voice.wav", (media_dir / "voice.wav").read_bytes(), "audio/wav")).run()
    at.radio(key="profile_mode").set_value("A profile file").run()
    at.file_uploader(key="profile_upload").set_value(("clinic.profile", b"not a profile at all", "text/plain")).run()
    no_exceptions(at)
    assert any("not a profile" in e.value and "without a baseline or profile" in e.value for e in at.error)
    assert at.metric, "the plain result is still shown"


def test_recordings_with_elan_and_praat_coding_are_scored_per_segment(rec40: Path) -> None:
    """An ELAN file beside its recording (the one it names) and a TextGrid named like its recording: each coded
    segment is one scored item; the coded tier is chosen by name."""
    from test_coding import DATA, elan_document

    other = rec40.read_bytes()
    at = page("your_data").run()
    at.file_uploader(key="own_files").set_value([
        ("rec40.wav", rec40.read_bytes(), "audio/wav"), ("coded.eaf", elan_document().encode(), "application/xml"),
        ("second.wav", other, "audio/wav"), ("second.TextGrid", (DATA / "coded.TextGrid").read_bytes(), "text/plain")])
    at.run()
    at.button(key="own_evaluate").click().run()
    no_exceptions(at)
    assert any("coded.eaf has 3 tiers" in s.label for s in at.status)
    at.text_input(key="own_tier").input("emotion").run()
    at.button(key="own_evaluate").click().run()
    no_exceptions(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Segments scored"] == "28", metrics
    rows = at.session_state["own_report"]["rows"]
    assert {r["path"] for r in rows} == {"rec40.wav", "second.wav"} and rows[0]["where"] == "annotation a1"
    at.file_uploader(key="own_files").set_value([("alone.TextGrid", (DATA / "coded.TextGrid").read_bytes(),
                                                  "text/plain")]).run()
    at.button(key="own_evaluate").click().run()
    no_exceptions(at)
    assert any("alone.TextGrid: upload its recording with it" in s.label for s in at.status)
