"""The app's five pages, declared in one place for ``app.py`` and for a page opened by its own URL.

Why a page needs it: with a ``pages/`` folder beside ``app.py``, each Streamlit process starts in the legacy
multipage mode that lists ``pages/*.py`` by file name, and leaves it only when some run calls
``st.navigation``. A bookmarked link such as ``/your_data`` that is a fresh server's first request would run
that page alone, under file names and without ``app.py``'s titles, icons and privacy line. Every page
therefore calls :func:`ensure_app_navigation` first: outside ``app.py`` it declares the navigation (which ends
the legacy mode for the process) and runs the same URL again, now through ``app.py``.
"""

from __future__ import annotations

import streamlit as st
from streamlit.navigation.page import StreamlitPage

PAGES: tuple[tuple[str, str, str], ...] = (
    ("pages/analyse.py", "Analyse a recording", "🎬"),
    ("pages/your_data.py", "Your data", "🗂️"),
    ("pages/misclassifications.py", "Explore misclassifications", "🔍"),
    ("pages/inference_tables.py", "Inference tables", "📊"),
    ("pages/model_card.py", "Model card", "📄"),
)
"""(script, title, icon); the first is the default page, which a URL that is no page also lands on."""

PRIVACY = "Research demo, not a diagnostic tool. Uploads stay in memory and are discarded after analysis."
_DECLARED = "_app_navigation_declared"


def app_navigation() -> StreamlitPage:
    """Declare the five pages with their titles and icons; returns the page the URL asks for."""
    st.session_state[_DECLARED] = True
    pages = [st.Page(path, title=title, icon=icon, default=i == 0) for i, (path, title, icon) in enumerate(PAGES)]
    return st.navigation(pages)


def ensure_app_navigation() -> None:
    """First call of every page: a no-op when ``app.py`` ran this session; otherwise this page was started by
    Streamlit's file-name discovery, so declare the app's navigation and run this URL again through ``app.py``."""
    if not st.session_state.get(_DECLARED):
        app_navigation()
        st.rerun()
