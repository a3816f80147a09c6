from pathlib import Path

import numpy as np

from emotion_core.html_report import render_html


def test_report_is_self_contained(analyzer, media_dir: Path) -> None:
    res = analyzer.analyze(media_dir / "talking.mp4")
    page = render_html(res, np.zeros((160, 160, 3), np.uint8), "Grad-CAM <test>")
    assert f"Expressed emotion: {res.label}" in page and "<table>" in page
    assert "data:image/png;base64," in page and "Grad-CAM &lt;test&gt;" in page
    assert "<script src=\"http" not in page and "plotly" in page  # plotly.js inline: opens offline
    assert page.count("<tr>") == 9  # header + 8 emotions
    assert "relative to the person" not in page


def test_report_names_the_baseline(analyzer, media_dir: Path) -> None:
    res = analyzer.analyze(media_dir / "talking.mp4", baseline_span=(0.0, 3.0))
    page = render_html(res)
    assert "Voice read relative to the person's baseline: talking.mp4 0-3 s" in page
