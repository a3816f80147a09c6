"""Streamlit entry point: ``streamlit run app.py``. Pages live in pages/ and stay thin; their shared parts in
pages/ui/, so that pages/ lists exactly the app's pages."""

import streamlit as st

from pages.ui.navigation import PRIVACY, app_navigation

st.set_page_config(page_title="Emotion explorer", page_icon="🎭", layout="wide")
st.sidebar.caption(PRIVACY)
app_navigation().run()
