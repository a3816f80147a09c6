"""Streamlit entry point: ``streamlit run app.py``. Pages live in pages/ and stay thin."""

import streamlit as st

st.set_page_config(page_title="Emotion explorer", page_icon="🎭", layout="wide")

pages = [
    st.Page("pages/analyse.py", title="Analyse a recording", icon="🎬", default=True),
    st.Page("pages/your_data.py", title="Your data", icon="🗂️"),
    st.Page("pages/misclassifications.py", title="Explore misclassifications", icon="🔍"),
    st.Page("pages/inference_tables.py", title="Inference tables", icon="📊"),
    st.Page("pages/model_card.py", title="Model card", icon="📄"),
]
st.sidebar.caption("Research demo, not a diagnostic tool. Uploads stay in memory and are discarded after analysis.")
st.navigation(pages).run()
