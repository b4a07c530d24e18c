"""LoRA Lab: watch a frozen model being adapted by a low-rank update, live.

    streamlit run app.py
"""
import streamlit as st

from lab_ui import sidebar

st.set_page_config(page_title="LoRA Lab", page_icon="🧪", layout="wide", initial_sidebar_state="auto")

PAGES = [
    st.Page("views/home.py", title="Home", icon=":material/home:", url_path="home", default=True),
    st.Page("views/train.py", title="Train (live)", icon=":material/monitoring:", url_path="train"),
    st.Page("views/compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"),
    st.Page("views/savings.py", title="Parameter savings", icon=":material/calculate:", url_path="savings"),
    st.Page("views/checkpoints.py", title="Checkpoints", icon=":material/save:", url_path="checkpoints"),
    st.Page("views/learn.py", title="Learn", icon=":material/school:", url_path="learn"),
]

page = st.navigation(PAGES)
sidebar.render()  # the experiment config, the same on every page; pages read it from the session
page.run()
