"""The model card: data, protocol, figures with their commands, limits, licences, privacy."""

import streamlit as st

from pages.ui.common import ROOT
from pages.ui.navigation import ensure_app_navigation

ensure_app_navigation()

card = ROOT / "MODEL_CARD.md"
st.markdown(card.read_text() if card.exists() else "The model card (MODEL_CARD.md) is missing from this installation.")
