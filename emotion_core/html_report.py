"""A self-contained HTML report of one analysis (tables, charts, Grad-CAM), for download."""

from __future__ import annotations

import base64
import html
import io

import numpy as np

from .analysis import AnalysisResult
from .charts import emotion_map_figure
from .constants import EMOTIONS
from .session import SOURCES


def _png_b64(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def render_html(res: AnalysisResult, cam_overlay: np.ndarray | None = None, cam_caption: str = "") -> str:
    """HTML with everything inline (plotly.js included), so the file opens offline."""
    import plotly.graph_objects as go

    cols = {"Face": None if res.face is None else res.face.probs,
            "Voice": None if res.voice is None else res.voice.probs, "Fusion": res.probs}
    rows = "".join(
        f"<tr><td>{e}</td>" + "".join(f"<td>{'—' if p is None else f'{p[i]:.1%}'}</td>" for p in cols.values()) + "</tr>"
        for i, e in enumerate(EMOTIONS))
    bar = go.Figure([go.Bar(name=k, x=list(EMOTIONS), y=list(v)) for k, v in cols.items() if v is not None])
    bar.update_layout(barmode="group", yaxis_tickformat=".0%", height=360)
    parts = [bar.to_html(full_html=False, include_plotlyjs=True)]
    fused = [w for w in res.timeline if w.probs is not None]
    if len(fused) > 1:
        tl = go.Figure([go.Scatter(x=[(w.start + w.end) / 2 for w in fused], y=[w.probs[k] for w in fused],
                                   name=e, mode="lines+markers") for k, e in enumerate(EMOTIONS)])
        tl.update_layout(height=320, yaxis_tickformat=".0%", xaxis_title="seconds")
        parts.append(tl.to_html(full_html=False, include_plotlyjs=False))
    summary = res.summary()
    session = ""
    if summary is not None and len(res.timeline) > 1:
        parts.append(emotion_map_figure(res.timeline, "fused", summary.smoothing_s).to_html(full_html=False,
                                                                                            include_plotlyjs=False))
        share_rows = "".join(f"<tr><td>{e}</td>" + "".join(f"<td>{summary.time_share[s][e]:.0%}</td>" for s in SOURCES)
                             + "</tr>" for e in EMOTIONS)
        segs = "".join(f"<li>{g.start:.0f}–{g.end:.0f} s: {g.emotion} ({g.mean_probability:.0%} on average)</li>"
                       for g in summary.segments) or "<li>none</li>"
        dis = "".join(f"<li>{d.start:.0f}–{d.end:.0f} s: face {d.face}, voice {d.voice}</li>"
                      for d in summary.disagreements) or "<li>none</li>"
        session = ("<h2>The session</h2><p>Share of the time each branch could be read ("
                   + ", ".join(f"{s} {summary.seconds_read[s]:.0f} s" for s in SOURCES) + ")</p>"
                   f"<table><tr><th>emotion</th>{''.join(f'<th>{s}</th>' for s in SOURCES)}</tr>{share_rows}</table>"
                   f"<h3>Sustained (one emotion for at least {summary.min_segment_s:g} s, smoothed over "
                   f"{summary.smoothing_s:g} s)</h3><ul>{segs}</ul>"
                   f"<h3>Face and voice disagree</h3><ul>{dis}</ul>")
    cam = (f'<figure><img src="data:image/png;base64,{_png_b64(cam_overlay)}" width="240">'
           f"<figcaption>{html.escape(cam_caption)}</figcaption></figure>") if cam_overlay is not None else ""
    warn = "".join(f"<li>{html.escape(w)}</li>" for w in res.warnings)
    conf = "" if res.probs is None else f" ({res.probs.max():.0%} confidence)"
    base = "" if res.baseline is None else (
        f"<p>Voice read relative to the person's baseline: {html.escape(res.baseline.source)} "
        f"({res.baseline.voiced_seconds:.0f} s of speech).</p>")
    if res.profile is not None:
        clips = ", ".join(f"{k} {v}" for k, v in (res.profile.get("clips") or {}).items())
        base += (f"<p>Voice read through the profile '{html.escape(str(res.profile['name']))}' (fitted on "
                 f"{html.escape(clips)}).</p>")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Emotion analysis: {html.escape(res.file)}</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto;color:#27323A}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccd;padding:4px 10px;text-align:right}}
td:first-child{{text-align:left}}</style></head><body>
<h1>Emotion analysis</h1><p>File: {html.escape(res.file)}</p>
<h2>Expressed emotion: {res.label or "none"}{conf}</h2>
<p>Face and voice: {res.agreement or "one modality only"}.</p>
{base}
{f"<ul>{warn}</ul>" if warn else ""}
<table><tr><th>emotion</th>{"".join(f"<th>{k}</th>" for k in cols)}</tr>{rows}</table>
{"".join(parts)}{session}{cam}
<p><small>Research demo, not a diagnostic tool. Models learned mostly from posed expressions (RAVDESS
and Turkish actors, FER2013 photos, film faces) and from some Urdu talk-show speech; the face model has
no calm class. See the model card for accuracy and limits.</small></p>
</body></html>"""
