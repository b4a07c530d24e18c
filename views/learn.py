"""Learn: how LoRA works, the formulas next to small live matrices.

Everything here is tiny (d <= 32) and computed with the same `lora_core` layers the trainer uses.
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from lab_ui import figures, panels, sidebar
from lora_core import Linear, LoRALinear
from lora_core.theory import eckart_young_tail, reduced_rank_loss

WIDE = [5, 6]  # formula | picture; Streamlit stacks the two on a narrow screen
ALPHA_DEMO = 16.0
SPECTRUM_SIZE = 24


def side_by_side():
    return st.columns(WIDE, gap="large")




# -- computations (pure NumPy, cached: the same inputs give the same pictures for everyone) ----
@st.cache_data(max_entries=256, show_spinner=False)
def random_factors(d: int, r: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random A (r x d) and a random B (d x r) for the picture (training starts with B = 0)."""
    rng = np.random.default_rng(seed)
    spread = r ** -0.25  # entries of A, B and B A all about 1 in size, so all three show on one colour scale
    return spread * rng.standard_normal((r, d)), spread * rng.standard_normal((d, r))


@st.cache_data(max_entries=256, show_spinner=False)
def first_step(d: int, r: int, seed: int) -> dict:
    """One forward/backward of a freshly initialised LoRALinear (B = 0) on a random regression batch."""
    rng = np.random.default_rng(seed)
    base = Linear(d, d, bias=False, rng=rng)
    layer = LoRALinear(base, r, alpha=float(r), rng=rng)  # Kaiming-uniform A, B = 0, as in training
    x = rng.standard_normal((32, d))
    target = x @ (base.weight.value + rng.standard_normal((d, d)) / math.sqrt(d)).T
    y = layer.forward(x)
    layer.zero_grad()
    layer.backward(2.0 * (y - target) / y.size)  # d(mean squared error)/dy
    return {"a": layer.lora_A.value.copy(), "b": layer.lora_B.value.copy(),
            "delta": layer.delta_weight(),
            "output_change": float(np.max(np.abs(y - x @ base.weight.value.T))),
            "grad_a": float(np.linalg.norm(layer.lora_A.grad)),
            "grad_b": float(np.linalg.norm(layer.lora_B.grad))}


@st.cache_data(max_entries=256, show_spinner=False)
def decaying_matrix(n: int, decay: float, seed: int) -> np.ndarray:
    """An n x n matrix with singular values decay**i in random directions: a stand-in for dW*."""
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.standard_normal((n, n)))
    v, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (u * decay ** np.arange(n)) @ v.T


@st.cache_data(max_entries=64, show_spinner=False)
def toy_floor_measured(rank: int, samples: int = 20_000) -> float:
    """The best rank-r fit of 4 features U(-1, 1) onto themselves, measured on a large sample."""
    x = np.random.default_rng(0).uniform(-1, 1, (samples, 4))
    return reduced_rank_loss(x, x, rank)


def scale_figure(alpha: float) -> go.Figure:
    ranks = np.arange(1, 65)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=ranks, y=alpha / ranks, name="LoRA: α / r", mode="lines",
                             line=dict(color=figures.TRAIN_SMOOTHED, width=3)))
    fig.add_trace(go.Scatter(x=ranks, y=alpha / np.sqrt(ranks), name="rsLoRA: α / √r", mode="lines",
                             line=dict(color=figures.VALIDATION, width=3)))
    fig.update_layout(template="plotly_white", height=320, font=dict(size=figures.FONT_SIZE),
                      title=dict(text=f"Scale of the update at α = {alpha:g}", font=dict(size=figures.TITLE_SIZE)),
                      margin=figures.MARGIN, hovermode="x unified",
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0))
    fig.update_xaxes(type="log", title="rank r", tickvals=[1, 2, 4, 8, 16, 32, 64])
    fig.update_yaxes(type="log", title="scale", tickvals=[0.25, 0.5, 1, 2, 4, 8, 16])
    return fig


def open_toy() -> None:
    sidebar.load_preset("seed")


# -- the page -----------------------------------------------------------------------------------
st.title("How LoRA works")
st.markdown("A big pretrained weight matrix stays **frozen**. Next to it sits a small **low-rank update**, the "
            "only thing that is trained. Each formula has live numbers beside it: turn the knobs.")

# (a) the update
st.header("1. The update: two thin matrices")
left, right = side_by_side()
with left:
    st.latex(r"W = W_0 + \Delta W, \qquad \Delta W = \frac{\alpha}{r}\, B A")
    st.latex(r"\begin{array}{lll} W_0: & d_\text{out}\times d_\text{in} & \text{frozen} \\ "
             r"A: & r\times d_\text{in} & \text{trained} \\ B: & d_\text{out}\times r & \text{trained}"
             r"\end{array}")
    st.markdown("Only `A` and `B` are trained: **r·(d_in + d_out)** numbers instead of **d_in·d_out**.")
with right:
    c1, c2, c3 = st.columns(3)
    d = c1.slider("size d = d_in = d_out", 2, 32, 16, key="learn_d")
    st.session_state["learn_r"] = min(st.session_state.get("learn_r", 2), d)  # keep r <= d when d shrinks
    r = c2.slider("rank r", 1, d, key="learn_r")
    seed = c3.number_input("seed", 0, 10_000, 0, key="learn_seed")
    with panels.metric_row():
        st.metric("LoRA params", f"{r * 2 * d:,}", help="r·(d_in + d_out): the numbers in A and B")
        st.metric("Full matrix", f"{d * d:,}", help="d_in·d_out: the numbers full fine-tuning trains")
        st.metric("LoRA / full", f"{100 * 2 * r / d:.0f}%")
    if 2 * r >= d:
        st.caption("At r ≥ d/2 LoRA saves nothing: the two thin matrices are as big as the full one.")
a, b = random_factors(d, int(r), int(seed))
panels.chart(figures.matrices_figure(a, b, b @ a), "learn_matrices")
st.caption("Here A **and** B are random so that the picture shows something (and α = r, so α/r = 1); "
           "training starts with B = 0 (section 2). Each column of B A mixes only the r columns of B, so B A has "
           "rank r however big d is.")
left, right = side_by_side()
with left:
    st.latex(r"y = x W_0^\top + \frac{\alpha}{r}\,(x A^\top)\, B^\top")
with right:
    st.markdown("The input goes through a thin **r-wide bottleneck** `x Aᵀ`. The big `B A` is never formed "
                "while training: the bottleneck costs r·(d_in + d_out) per input row, where `B A` would cost "
                "d_in·d_out memory and work on every step.")

# (b) B starts at zero
st.header("2. Why B starts at zero")
step = first_step(d, int(r), int(seed))
left, right = side_by_side()
with left:
    st.latex(r"B_0 = 0 \;\Rightarrow\; \Delta W = 0 \;\Rightarrow\; y = x W_0^\top")
    st.markdown("At step 0 the adapted model **is** the base model, exactly: training starts from what the "
                "base already knows, not from a random change to it.")
    st.latex(r"\frac{\partial L}{\partial B} = \frac{\alpha}{r}\, G^\top (x A^\top)")
    st.latex(r"\frac{\partial L}{\partial A} = \frac{\alpha}{r}\, (G B)^\top x, \qquad "
             r"G = \frac{\partial L}{\partial y}")
with right:
    with panels.metric_row():
        st.metric("Output change", f"{step['output_change']:.1g}", help="max |y − x W0ᵀ| at initialisation")
        st.metric("‖∂L/∂B‖", f"{step['grad_b']:.3g}", help="First step, one random regression batch")
        st.metric("‖∂L/∂A‖", f"{step['grad_a']:.3g}", help="First step, one random regression batch")
    st.markdown("Because `A` is random, `x Aᵀ` is not zero, so **B gets a gradient** on the first step. `A`'s "
                "gradient is zero until `B` has moved; from the second step both learn. (Were both zero, "
                "neither would ever move: each factor's gradient goes through the other.)")
init_figure = figures.matrices_figure(step["a"], step["b"], step["delta"])
init_figure.update_layout(title_text="At initialisation: random A, B = 0, so B A = 0")
panels.chart(init_figure, "learn_init")
st.caption(f"A {d}×{d} LoRALinear of rank {r} exactly as training creates it: Kaiming-uniform A, B = 0, so "
           "B A = 0. Same d, r and seed as above.")

# (c) alpha and rsLoRA
st.header("3. Alpha and rsLoRA: the size of the update")
left, right = side_by_side()
with left:
    st.latex(r"\text{LoRA:}\quad \Delta W = \frac{\alpha}{r}\, B A")
    st.latex(r"\text{rsLoRA:}\quad \Delta W = \frac{\alpha}{\sqrt{r}}\, B A")
    st.markdown("`α` is a fixed multiplier chosen once. With **α/r** the update shrinks as the rank grows: "
                "at α = 16, rank 64 is scaled by 0.25 and rank 1 by 16. A larger rank then learns more slowly "
                "at the same learning rate, and looks worse than it is.")
    st.markdown("A sum of r random rank-1 directions grows like √r, not r. **rsLoRA** divides by **√r**: the "
                "update keeps its size, so a good learning rate stays good across ranks. Try it with the "
                "sidebar's *rsLoRA scaling* switch on the Compare page.")
with right:
    panels.chart(scale_figure(ALPHA_DEMO), "learn_scale")
    ranks = [1, 4, 16, 64]
    st.dataframe({"rank r": ranks, "α / r": [ALPHA_DEMO / k for k in ranks],
                  "α / √r": [ALPHA_DEMO / math.sqrt(k) for k in ranks]},
                 hide_index=True, column_config={"α / r": st.column_config.NumberColumn(format="%.3g"),
                                                  "α / √r": st.column_config.NumberColumn(format="%.3g")})

# (d) Eckart-Young
st.header("4. Why a low rank can be enough")
left, right = side_by_side()
with left:
    st.markdown("Say the ideal update is a matrix ΔW\\*. The best any rank-r update can do is keep ΔW\\*'s "
                "**r largest singular directions** (Eckart–Young):")
    st.latex(r"\min_{\operatorname{rank}(D)\le r} \lVert \Delta W^* - D \rVert_F^2 \;=\; "
             r"\sum_{i>r} \sigma_i^2")
    st.markdown("If the singular values **fall fast**, a small r keeps almost everything: fine-tuning updates "
                "of real models tend to look like that, which is why r = 8 often matches full fine-tuning. "
                "If they are all equal (decay 1), every direction counts and a low rank loses a lot.")
with right:
    c1, c2, c3 = st.columns(3)
    decay = c1.slider("decay of σᵢ", 0.3, 1.0, 0.7, 0.05, key="learn_decay")
    keep = c2.slider("rank r", 1, SPECTRUM_SIZE, 4, key="learn_keep")
    spec_seed = c3.number_input("seed", 0, 10_000, 0, key="learn_spec_seed")
    target = decaying_matrix(SPECTRUM_SIZE, float(decay), int(spec_seed))
    sigma = np.linalg.svd(target, compute_uv=False)
    tail, total = eckart_young_tail(sigma, keep), float(np.sum(sigma ** 2))
    with panels.metric_row():
        st.metric(f"Error at rank {keep}", f"{tail:.3g}", help="Σ_{i>r} σᵢ² of the SVD: the best rank-r error")
        st.metric("Share of ‖ΔW*‖² kept", f"{100 * (1 - tail / total):.1f}%")
    panels.chart(figures.singular_values_figure({f"σᵢ of a {SPECTRUM_SIZE}×{SPECTRUM_SIZE} ΔW*": sigma}, rank=keep),
         "learn_spectrum")
    st.caption("Everything right of the dashed line is what a rank-r adapter cannot represent.")

# (e) the original toy
st.header("5. The original toy's floor of 0.25")
left, right = side_by_side()
with left:
    st.markdown("The toy copies 4 random text features and 4 random image features, each uniform in [−1, 1], "
                "through a rank-1 adapter per modality (no base model).")
    st.latex(r"\operatorname{Var}\,U(-1,1) = \frac{1}{3}")
    st.latex(r"\text{best loss} = \frac{4-r}{4}\cdot\frac{1}{3} \;\overset{r=1}{=}\; "
             r"\frac{3}{4}\cdot\frac{1}{3} = 0.25")
    st.markdown("Copying 4 independent features needs rank 4. A rank-1 branch reproduces **1 of its 4 "
                "directions** and leaves out the other 3, whatever the optimizer and however many steps: the "
                "toy's curve **flattens at 0.25** because of the rank, not because training is stuck.")
with right:
    toy_rank = st.slider("rank per modality", 1, 4, 1, key="learn_toy_rank")
    with panels.metric_row():
        st.metric("Theory (4 − r)/4 · 1/3", f"{(4 - toy_rank) / 12:.4f}")
        st.metric("Best fit, 20,000 samples", f"{toy_floor_measured(toy_rank):.4f}",
                  help="The exact best rank-r fit (reduced-rank regression) on a random sample")
    st.caption("A finite sample always has one direction a little wider than 1/3, so the measured best sits a "
               "hair below the theory; on the toy's 100 training samples a bit more.")
    if st.button("Open the toy on the Train page", icon=":material/toys:", on_click=open_toy, type="primary"):
        st.switch_page("views/train.py")
    st.caption("Loads the `seed` preset (rank 1 per modality, plain SGD, 500 steps): watch the loss settle on "
               "the dashed 0.25 line.")
