"""Home: what LoRA Lab is, and the lessons a teacher opens with one click (or shares as a link)."""
from __future__ import annotations

from typing import NamedTuple

import streamlit as st

from lab_ui import sidebar
from lab_ui.urlstate import preset_link

TRAIN, COMPARE = "views/train.py", "views/compare.py"
PER_ROW = 3  # cards per row on a wide screen; Streamlit stacks columns on a narrow one


class Lesson(NamedTuple):
    title: str
    icon: str
    sentence: str  # what the class will see
    preset: str
    page: str = TRAIN
    compare: str | None = None  # the Compare page's mode (?compare=...)

    @property
    def link(self) -> str:
        page = "compare" if self.page == COMPARE else "train"
        return preset_link(self.preset, page) + (f"&compare={self.compare}" if self.compare else "")


LESSONS = (
    Lesson("Why low rank works", ":material/trending_down:", "A rank-2 adapter learns an update of true rank 8: the loss stops at the "
           "dashed floor theory predicts. Try rank 2, 8 and 16 and watch the floor line move.",
           "synthetic-low-rank"),
    Lesson("Rank vs accuracy", ":material/stacked_line_chart:", "Digits turned by 90°: ranks 1 to 64 and full fine-tuning side by side, "
           "accuracy against the number of trained parameters.", "digits-rotated", COMPARE, "rank"),
    Lesson("Optimizer race", ":material/sports_score:", "The same run trained with SGD, Adam and AdamW: the same data and seed, "
           "three curves in one chart.", "synthetic", COMPARE, "optimizer"),
    Lesson("Adapting a language model", ":material/menu_book:", "A character model that read English prose learns Shakespeare: "
           "bits per character fall, and its samples start to sound like a play.", "text"),
    Lesson("Multimodal adapters", ":material/image:", "Emoji pictures and names, one adapter per modality: late, early and "
           "cross-modal fusion compared.", "emoji", COMPARE, "fusion"),
    Lesson("The original toy", ":material/toys:", "Rank 1 per modality can copy only 1 of each modality's 4 random features, "
           "so the loss flattens at 0.25 = ¾ × ⅓, the variance of the 3 it misses.", "seed"),
)


def absolute(link: str) -> str:
    """The full address of a relative app link, as the browser sees this app (relative when unknown)."""
    try:
        url = st.context.url
    except Exception:  # no browser (a script or a test): the relative link still works inside the app
        url = None
    if not url:
        return link
    base = url.split("?")[0].rstrip("/")
    if base.endswith("/home"):
        base = base[: -len("/home")]
    return base + link


def open_lesson(lesson: Lesson) -> None:
    st.switch_page(lesson.page, query_params={"compare": lesson.compare} if lesson.compare else None)


st.title("LoRA Lab")
st.markdown(
    "#### A frozen model is adapted live by a small low-rank update. "
    "Pick a modality, a rank and an optimizer, watch the loss curves, compare ranks, and export the adapter."
)

st.header("Lessons")
st.caption("**Open lesson** loads a ready experiment. The link under it opens the same experiment for "
           "anyone you send it to: same settings, same seed, same curve.")
for start in range(0, len(LESSONS), PER_ROW):
    row = LESSONS[start: start + PER_ROW]
    for column, lesson in zip(st.columns(PER_ROW, gap="medium"), row):
        with column, st.container(border=True, height="stretch"):
            st.subheader(f"{lesson.icon} {lesson.title}")
            st.write(lesson.sentence)
            where = "Compare page" if lesson.page == COMPARE else "Train page"
            if st.button("Open lesson", key=f"lesson_{lesson.preset}_{lesson.compare}", type="primary",
                         on_click=sidebar.load_preset, args=(lesson.preset,), width="stretch",
                         help=f"Loads the preset `{lesson.preset}` and opens the {where}."):
                open_lesson(lesson)
            st.code(absolute(lesson.link), language=None, wrap_lines=True)

st.divider()
st.markdown("**Where to next:** the sidebar holds every setting of the experiment, on every page. "
            "**Train** runs it live, **Compare ranks** runs several side by side, **Parameter savings** counts "
            "what LoRA trains on real models, **Checkpoints** downloads the adapter, and **Learn** explains the "
            "math next to live matrices.")
