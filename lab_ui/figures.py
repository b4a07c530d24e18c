"""Figure builders for LoRA Lab: plain data in, a ``plotly.graph_objects.Figure`` out.

Every builder is a pure function: it takes NumPy arrays, lists, dicts and floats, imports
neither Streamlit nor ``lora_core``, keeps no global state, and is tested without a browser
(``tests/test_figures.py``). Empty inputs (a run that has not started) give an empty axis with
an annotation instead of an exception; NaN entries (validation only every few steps) are dropped.

Show the figures with ``st.plotly_chart(fig, theme=None, use_container_width=True)``: Streamlit's
default ``theme="streamlit"`` replaces the template, fonts and colours chosen here.

Style: ``plotly_white``, base font 15 px, horizontal legend above the plot (it never squeezes a
phone-width plot), small margins, one colour per meaning across all figures (the constants below).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = [
    "TRAIN", "TRAIN_SMOOTHED", "VALIDATION", "THEORY_FLOOR", "TRAIN_OPTIMUM", "NOISE_FLOOR",
    "BASE_MODEL", "ADAPTED_MODEL", "FULL_FT", "HEAD_ONLY", "PREVIOUS_RUN", "RANK_COLORS",
    "FROZEN", "CORRECT", "WRONG", "MEMORY_COLORS", "EMPTY_TEXT",
    "downsample", "ema", "human_count", "human_bytes",
    "loss_figure", "metric_figure", "compare_figure", "params_vs_loss_figure",
    "heatmap_figure", "delta_comparison_figure", "singular_values_figure", "prediction_grid_figure",
    "savings_figure", "memory_figure", "branch_figure", "param_split_figure", "matrices_figure",
]

# -- palette: one colour per meaning, the same in every figure -------------------------------
TRAIN = "#9ecae1"            # raw training loss (drawn faint and thin)
TRAIN_SMOOTHED = "#1f77b4"   # smoothed training loss
VALIDATION = "#e6550d"       # validation loss / metric
THEORY_FLOOR = "#2b8a3e"     # what theory says a rank-r update can reach (Eckart-Young)
TRAIN_OPTIMUM = "#9467bd"    # the best possible loss on this training set
NOISE_FLOOR = "#555555"      # irreducible noise
BASE_MODEL = "#8c564b"       # the frozen base model, before adaptation
ADAPTED_MODEL = "#0f7c86"    # the LoRA-adapted model
FULL_FT = "#222222"          # full fine-tuning, the reference
HEAD_ONLY = "#b8860b"        # training only the output head
PREVIOUS_RUN = "#b0b0b0"     # ghost curves of earlier runs
FROZEN = "#c8c8c8"           # frozen parameters
CORRECT = "#1a7f37"          # a right prediction
WRONG = "#c62828"            # a wrong prediction
# ranks (and other compared settings), by order: qualitative, none of them black, grey or gold
RANK_COLORS = ("#1f77b4", "#ff7f0e", "#d62728", "#9467bd", "#17becf", "#e377c2", "#8c564b", "#2ca02c")
MEMORY_COLORS = {"weights": "#4c78a8", "gradients": "#f58518", "optimizer state": "#e45756"}

EMPTY_TEXT = "Press Play to start training"
FONT_SIZE = 15
TITLE_SIZE = 18
SMALL_SIZE = 13
MARGIN = dict(l=64, r=24, t=72, b=56)
LEGEND_TOP_PX = 38  # the legend hangs under the title; a legend that wraps pushes the plot down
MARGIN_NO_LEGEND_T = 56

_FLOORS = {  # key -> (label, colour, dash)
    "population": ("theory floor for rank r (Eckart–Young)", THEORY_FLOOR, "dash"),
    "train_optimum": ("best possible on this training set", TRAIN_OPTIMUM, "dashdot"),
    "noise": ("noise floor", NOISE_FLOOR, "dot"),
}


# -- helpers exported for tables ---------------------------------------------------------------
def _scaled(n: float, base: float, units: Sequence[str]) -> tuple[str, str]:
    """n as (number with 3 significant digits, unit), moving up a unit when rounding reaches `base`."""
    i = 0
    value = abs(n)
    while i < len(units) - 1 and value >= base:
        value /= base
        i += 1
    text = f"{value:.3g}"
    if float(text) >= base and i < len(units) - 1:  # 999.96K -> 1M, not "1e+03K"
        value /= base
        i += 1
        text = f"{value:.3g}"
    if "e" in text:  # beyond the largest unit
        text = f"{value:,.0f}"
    return ("-" if n < 0 else "") + text, units[i]


def human_count(n) -> str:
    """A parameter count for people: "4,096" below 10,000, else "65.5K", "37.7M", "6.74B", "175B"."""
    if n is None or not math.isfinite(float(n)):
        return "—"
    n = float(n)
    if abs(n) < 10_000:
        return f"{n:,.0f}" if n == round(n) else f"{n:,.2f}".rstrip("0").rstrip(".")
    text, unit = _scaled(n, 1000.0, ("", "K", "M", "B", "T"))
    return text + unit


def human_bytes(n) -> str:
    """A size for people, decimal units (1 MB = 10^6 bytes): "512 B", "75.5 MB", "1.2 GB"."""
    if n is None or not math.isfinite(float(n)):
        return "—"
    n = float(n)
    if abs(n) < 1000:
        return f"{n:.0f} B"
    text, unit = _scaled(n, 1000.0, ("B", "KB", "MB", "GB", "TB", "PB"))
    return f"{text} {unit}"


# -- data reduction ----------------------------------------------------------------------------
def _minmax_indices(y: np.ndarray, max_points: int) -> np.ndarray:
    """Indices kept by min/max bucket decimation (see `downsample`), increasing. Vectorised."""
    n = y.size
    if n <= max_points:
        return np.arange(n)
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}.")
    buckets = (max_points - 2) // 2
    if buckets == 0:
        return np.array([0, n - 1])
    inner = n - 2
    size = -(-inner // buckets)  # points per bucket; ceil(inner / size) <= buckets
    rows = -(-inner // size)
    lows = np.full(rows * size, np.inf)
    highs = np.full(rows * size, -np.inf)
    seg = y[1:n - 1]
    finite = ~np.isnan(seg)
    lows[:inner] = np.where(finite, seg, np.inf)
    highs[:inner] = np.where(finite, seg, -np.inf)
    offset = 1 + np.arange(rows) * size
    a = offset + lows.reshape(rows, size).argmin(axis=1)
    b = offset + highs.reshape(rows, size).argmax(axis=1)
    picked = np.concatenate([a, b])
    picked = picked[finite[picked - 1]]  # an all-NaN bucket gives nothing
    return np.unique(np.concatenate([[0], picked, [n - 1]]))


def downsample(x, y, max_points: int = 800) -> tuple[np.ndarray, np.ndarray]:
    """Keep a curve small however long the run, spikes included.

    Up to `max_points` points: returned as they are (as arrays). Longer: min/max bucket
    decimation -- the first and the last point, and the points between them cut into at most
    (max_points - 2) // 2 buckets of ceil((n - 2) / ((max_points - 2) // 2)) consecutive points,
    each giving the positions of its minimum and its maximum of y (NaN ignored), in order. The
    result has at most `max_points` points, all of them real points, and keeps every spike.
    """
    x = np.asarray(x)
    y = np.asarray(y, dtype=float)
    n = min(x.size, y.size)
    x, y = x[:n], y[:n]
    idx = _minmax_indices(y, int(max_points))
    return x[idx], y[idx]


def _uniform_indices(n: int, max_points: int) -> np.ndarray:
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(int))


_EMA_BLOCK = 128


def ema(y, smoothing: float) -> np.ndarray:
    """TensorBoard's debiased exponential moving average.

    last = smoothing * last + (1 - smoothing) * y_i over the finite values, divided by
    (1 - smoothing ** count) so that the start is not pulled towards 0. smoothing 0 is the raw
    series. Non-finite entries stay NaN in the output and do not move the average.
    Vectorised in blocks (one matrix product), so a 100k-step history costs milliseconds.
    """
    s = float(smoothing)
    if not 0.0 <= s < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}.")
    y = np.asarray(y, dtype=float).ravel()
    out = np.full(y.shape, np.nan)
    finite = np.isfinite(y)
    v = y[finite]
    n = v.size
    if n == 0:
        return out
    if s == 0.0:
        out[finite] = v
        return out
    block = min(_EMA_BLOCK, n)
    k = np.arange(block)
    lag = k[:, None] - k[None, :]
    weights = np.where(lag >= 0, (1.0 - s) * s ** np.maximum(lag, 0), 0.0)  # (block, block), lower triangular
    padded = np.zeros(-(-n // block) * block)
    padded[:n] = v
    local = padded.reshape(-1, block) @ weights.T  # each block's average started from 0
    decay = s ** (k + 1.0)
    carry = 0.0
    for row in local:  # bring in what came before each block
        row += decay * carry
        carry = row[-1]
    with np.errstate(under="ignore"):
        debias = 1.0 - s ** np.arange(1.0, n + 1.0)
    out[finite] = local.ravel()[:n] / debias
    return out


def smoothed_for_display(x: np.ndarray, y: np.ndarray, smoothing: float, max_points: int):
    """The EMA of y, at most `max_points` of it, in time independent of the run's length.

    A long history is first averaged in buckets of k steps and smoothed with smoothing**k, the
    same time constant per step: on screen it is the full-resolution EMA, at a tiny cost.
    """
    k = max(1, y.size // max_points)
    if k == 1:
        return x, ema(y, smoothing)
    n = y.size // k * k
    bucket_mean = y[:n].reshape(-1, k).mean(axis=1)
    return x[k - 1:n:k], ema(bucket_mean, smoothing ** k)


def _finite_xy(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (x, y) with both finite, as float arrays; unequal lengths are cut to the shorter."""
    x = np.asarray(x if x is not None else (), dtype=float).ravel()
    y = np.asarray(y if y is not None else (), dtype=float).ravel()
    n = min(x.size, y.size)
    x, y = x[:n], y[:n]
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def _as_steps(x: np.ndarray) -> np.ndarray:
    """Whole-number steps as integers (hover shows "1,200", not "1200.0")."""
    if x.size and np.all(x == np.round(x)) and np.all(np.abs(x) < 2**53):
        return x.astype(np.int64)
    return x


# -- layout ------------------------------------------------------------------------------------
# The look of plotly_white in a few layout keys. Plotly's named templates carry defaults for every
# trace type and cost ~10 ms to copy into each figure: too much for a chart redrawn 4 times a second.
_GRID = "#e6eaf0"
TEMPLATE = go.layout.Template(layout=dict(
    paper_bgcolor="white", plot_bgcolor="white", font=dict(color="#2a3f5f"),
    xaxis=dict(gridcolor=_GRID, linecolor=_GRID, zerolinecolor=_GRID, ticks="", automargin=True),
    yaxis=dict(gridcolor=_GRID, linecolor=_GRID, zerolinecolor=_GRID, ticks="", automargin=True),
    hoverlabel=dict(align="left"), colorway=["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A"]))


def _figure() -> go.Figure:
    """An empty figure on the light template (without copying Plotly's default template first)."""
    return go.Figure(layout=dict(template=TEMPLATE))


def _style(fig: go.Figure, *, title: str, height, x_title=None, y_title=None, uirevision=None,
           hovermode="closest", showlegend=True) -> go.Figure:
    fig.update_layout(
        template=TEMPLATE,
        height=int(height),
        font=dict(size=FONT_SIZE),
        title=dict(text=title, x=0.0, xanchor="left", xref="container", y=1.0, yanchor="top",
                   yref="container", pad=dict(t=10, l=12), font=dict(size=TITLE_SIZE)),
        margin=dict(MARGIN, t=MARGIN["t"] if showlegend else MARGIN_NO_LEGEND_T),
        legend=dict(orientation="h", yref="container", y=1.0 - LEGEND_TOP_PX / float(height), yanchor="top",
                    xref="container", x=0.01, xanchor="left", font=dict(size=SMALL_SIZE), itemwidth=30,
                    bgcolor="rgba(255,255,255,0)"),
        hoverlabel=dict(font=dict(size=14)),
        hovermode=hovermode,
        showlegend=showlegend,
    )
    if x_title is not None:
        fig.update_xaxes(title=dict(text=x_title, standoff=8))
    if y_title is not None:
        fig.update_yaxes(title=dict(text=y_title, standoff=8))
    if uirevision is not None:
        fig.update_layout(uirevision=uirevision)
    return fig


def _log_axis(fig: go.Figure, log_y: bool, uirevision) -> None:
    """Log or linear y; the axis keeps its own zoom per scale (switching scale resets it)."""
    fig.update_yaxes(type="log" if log_y else "linear",
                     uirevision=None if uirevision is None else f"{uirevision}-{'log' if log_y else 'linear'}")


def _empty(fig: go.Figure, text: str) -> go.Figure:
    """The empty state: the axes stay (without numbers where nothing sets them) and say what to do."""
    fig.update_xaxes(showticklabels=False)
    if not any(s.yref == "y" for s in fig.layout.shapes):
        fig.update_yaxes(showticklabels=False)
    fig.add_annotation(text=text, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                       font=dict(size=16, color="#666666"))
    return fig


def _fmt(v: float, digits: int = 4) -> str:
    return f"{v:.{digits}g}"


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


LABEL_LINE_PX = 16  # height of one line of a reference-line label


def _floor_refs(floors: Mapping | None) -> list[tuple]:
    """floors dict -> [(value, label, colour, dash)]; a value may be a (value, label) pair."""
    refs = []
    for key, value in (floors or {}).items():
        label, color, dash = _FLOORS.get(key, (str(key), NOISE_FLOOR, "dash"))
        if isinstance(value, (tuple, list)):
            value, label = value
        if value is None:
            continue
        refs.append((float(value), f"{label}: {_fmt(float(value))}", color, dash))
    return refs


def _plotted_y(fig: go.Figure, log_y: bool) -> np.ndarray:
    parts = [np.zeros(0)]
    for trace in fig.data:
        if getattr(trace, "y", None) is None:
            continue
        a = np.asarray(trace.y, dtype=float).ravel()
        a = a[np.isfinite(a)]
        parts.append(a[a > 0] if log_y else a)
    return np.concatenate(parts)


def _add_ref_lines(fig: go.Figure, refs: Sequence[tuple], *, log_y: bool, height) -> None:
    """Horizontal reference lines (value, text, colour, dash) across the plot, labelled at the right end.

    Each label sits just above its line on a light background (a curve under it stays readable);
    labels that would overlap are stacked upwards. The y range is set to hold the data, every line
    and the labels. Lines a log axis cannot show (value <= 0) are left out.
    """
    refs = sorted((r for r in refs if math.isfinite(r[0]) and (r[0] > 0 or not log_y)), key=lambda r: r[0])
    if not refs:
        return
    tf = math.log10 if log_y else float
    levels = [tf(r[0]) for r in refs]
    data = _plotted_y(fig, log_y)
    t = np.concatenate([np.log10(data) if log_y else data, levels])
    lo, hi = float(t.min()), float(t.max())
    span = hi - lo if hi > lo else (0.5 if log_y else max(abs(hi) * 0.5, 1e-12))
    bottom, top = lo - 0.06 * span, hi + 0.06 * span
    plot_px = max(80.0, float(height) - MARGIN["t"] - MARGIN["b"])
    for _ in range(6):  # stack the labels bottom-up; raise the top of the range until they fit
        px = [(level - bottom) / (top - bottom) * plot_px for level in levels]
        offsets, ceiling = [], -math.inf
        for p in px:
            base = max(p + 1.0, ceiling)
            offsets.append(base - p)
            ceiling = base + LABEL_LINE_PX
        if ceiling + 4 <= plot_px:
            break
        top = bottom + (top - bottom) * (ceiling + 4) / plot_px
    fig.update_yaxes(range=[bottom, top], autorange=False)
    for (value, text, color, dash), level, offset in zip(refs, levels, offsets):
        fig.add_hline(y=value, line=dict(color=color, dash=dash, width=1.8), layer="below", name=text)
        fig.add_annotation(
            x=1.0, xref="paper", xanchor="right", y=level, yref="y", yanchor="bottom", yshift=offset,
            text=text, showarrow=False, bgcolor="rgba(255,255,255,0.6)", borderpad=0,
            font=dict(size=12, color=color), name="reference label")


def _previous_traces(fig, previous, smoothing, max_points):
    for run in previous or ():
        x, y = _finite_xy(run.get("steps", ()), run.get("loss", ()))
        if not x.size:
            continue
        if smoothing > 0:
            y = ema(y, smoothing)
        idx = _minmax_indices(y, max_points)
        name = str(run.get("label", "previous run"))
        fig.add_trace(go.Scatter(
            x=_as_steps(x[idx]), y=y[idx], name=name, mode="lines",
            line=dict(color=PREVIOUS_RUN, width=1.5, dash="dash"),
            hovertemplate=f"{name}: %{{y:.5g}}<extra></extra>"))


# -- 2. loss -----------------------------------------------------------------------------------
def loss_figure(steps, train_loss, *, val_steps=(), val_loss=(), smoothing=0.6, log_y=True, floors=None,
                title="Loss", y_label="loss", uirevision="loss", max_points=800, height=380,
                previous=(), empty_text=EMPTY_TEXT) -> go.Figure:
    """Training loss (raw: faint; smoothed: solid), validation (line + markers), theory floors.

    `floors`: dict with optional keys "population", "train_optimum", "noise" (a value, or a
    (value, label) pair), drawn as dashed/dotted horizontal lines labelled at the right end.
    `previous`: earlier runs as dicts {"label", "steps", "loss"}, drawn as grey dashed ghosts.
    Train curves are smoothed on the full history, then reduced with `downsample`.
    """
    x, y = _finite_xy(steps, train_loss)
    vx, vy = _finite_xy(val_steps, val_loss)
    fig = _figure()
    _previous_traces(fig, previous, smoothing, max_points)
    if x.size:
        xs = _as_steps(x)
        if smoothing > 0:
            idx = _minmax_indices(y, max_points)
            fig.add_trace(go.Scatter(
                x=xs[idx], y=y[idx], name="train", mode="lines", line=dict(color=TRAIN, width=1),
                hovertemplate="train: %{y:.6g}<extra></extra>"))
            sx, smooth = smoothed_for_display(xs, y, smoothing, max_points)
            fig.add_trace(go.Scatter(
                x=sx, y=smooth, name="train (smoothed)", mode="lines",
                line=dict(color=TRAIN_SMOOTHED, width=2.5),
                hovertemplate="train (smoothed): %{y:.6g}<extra></extra>"))
        else:
            idx = _minmax_indices(y, max_points)
            fig.add_trace(go.Scatter(
                x=xs[idx], y=y[idx], name="train", mode="lines", line=dict(color=TRAIN_SMOOTHED, width=2),
                hovertemplate="train: %{y:.6g}<extra></extra>"))
    if vx.size:
        idx = _minmax_indices(vy, max_points)
        fig.add_trace(go.Scatter(
            x=_as_steps(vx)[idx], y=vy[idx], name="validation", mode="lines+markers",
            line=dict(color=VALIDATION, width=2), marker=dict(size=6),
            hovertemplate="validation: %{y:.6g}<extra></extra>"))
    _style(fig, title=title, height=height, x_title="step", y_title=y_label, uirevision=uirevision,
           hovermode="x unified")
    _log_axis(fig, log_y, uirevision)
    _add_ref_lines(fig, _floor_refs(floors), log_y=log_y, height=height)
    if not x.size and not vx.size:
        _empty(fig, empty_text)
    return fig


# -- 3. metric ---------------------------------------------------------------------------------
def metric_figure(val_steps, values, *, name="accuracy", percent=True, baseline=None, full_ft=None,
                  uirevision="metric", height=300, max_points=800, empty_text=EMPTY_TEXT) -> go.Figure:
    """Validation metric over steps: accuracy (fractions, shown as %) or e.g. bits per character.

    `baseline` ("frozen base") and `full_ft` ("full fine-tuning") are drawn as reference lines.
    """
    x, y = _finite_xy(val_steps, values)
    scale = 100.0 if percent else 1.0
    unit = "%" if percent else ""
    fmt = ".2f" if percent else ".4g"
    fig = _figure()
    if x.size:
        idx = _minmax_indices(y, max_points)
        fig.add_trace(go.Scatter(
            x=_as_steps(x)[idx], y=y[idx] * scale, name=f"validation {name}", mode="lines+markers",
            line=dict(color=VALIDATION, width=2), marker=dict(size=6),
            hovertemplate=f"validation {name}: %{{y:{fmt}}}{unit}<extra></extra>"))
    y_title = f"validation {name} (%)" if percent else f"validation {name}"
    _style(fig, title=f"Validation {name}", height=height, x_title="step", y_title=y_title,
           uirevision=uirevision, hovermode="x unified")
    refs = [(float(v) * scale, f"{label}: {float(v) * scale:{'.1f' if percent else '.4g'}}{unit}", color, dash)
            for v, label, color, dash in ((baseline, "frozen base", BASE_MODEL, "dash"),
                                          (full_ft, "full fine-tuning", FULL_FT, "dot")) if v is not None]
    _add_ref_lines(fig, refs, log_y=False, height=height)
    if percent:
        fig.update_yaxes(ticksuffix="%")
    if not x.size:
        _empty(fig, empty_text)
    return fig


# -- 4. compare --------------------------------------------------------------------------------
def _series_colors(labels: Sequence[str]) -> list[str]:
    """Named colours for "full" and "head", the rank sequence by order for the others."""
    colors, k = [], 0
    for label in labels:
        low = str(label).lower()
        if low.startswith("full"):
            colors.append(FULL_FT)
        elif low.startswith("head"):
            colors.append(HEAD_ONLY)
        else:
            colors.append(RANK_COLORS[k % len(RANK_COLORS)])
            k += 1
    return colors


def compare_figure(curves, *, log_y=True, floors=None, uirevision="compare", height=420, max_points=800,
                   title="Loss by setting", y_label="loss", empty_text=EMPTY_TEXT) -> go.Figure:
    """Overlaid loss curves, one per setting: dicts {"label", "steps", "loss", "band_low"?, "band_high"?}.

    Loss is expected already smoothed (or a mean over seeds); a band (e.g. min/max over seeds) is a
    lighter filled area in the curve's colour. Colours: the rank sequence by order, except labels
    "full" and "head", which keep their named colours.
    """
    curves = list(curves or ())
    colors = _series_colors([c.get("label", "") for c in curves])
    fig = _figure()
    drawn = 0
    for curve, color in zip(curves, colors):
        label = str(curve.get("label", ""))
        steps = curve.get("steps", ())
        low, high = curve.get("band_low"), curve.get("band_high")
        if low is not None and high is not None:
            bx, blo = _finite_xy(steps, low)
            bx2, bhi = _finite_xy(steps, high)
            if bx.size and bx.size == bx2.size and np.array_equal(bx, bx2):
                idx = _uniform_indices(bx.size, max_points)
                common = dict(legendgroup=label, showlegend=False, mode="lines", line=dict(width=0, color=color),
                              hoverinfo="skip")
                fig.add_trace(go.Scatter(x=_as_steps(bx)[idx], y=bhi[idx], name=f"{label} spread", **common))
                fig.add_trace(go.Scatter(x=_as_steps(bx)[idx], y=blo[idx], name=f"{label} spread", fill="tonexty",
                                         fillcolor=_rgba(color, 0.18), **common))
        x, y = _finite_xy(steps, curve.get("loss", ()))
        if not x.size:
            continue
        idx = _minmax_indices(y, max_points)
        fig.add_trace(go.Scatter(
            x=_as_steps(x)[idx], y=y[idx], name=label, legendgroup=label, mode="lines",
            line=dict(color=color, width=2.5, dash="dash" if color == FULL_FT else "solid"),
            hovertemplate=f"{label}: %{{y:.5g}}<extra></extra>"))
        drawn += 1
    _style(fig, title=title, height=height, x_title="step", y_title=y_label, uirevision=uirevision,
           hovermode="x unified")
    _log_axis(fig, log_y, uirevision)
    _add_ref_lines(fig, _floor_refs(floors), log_y=log_y, height=height)
    if not drawn:
        _empty(fig, empty_text)
    return fig


# -- 5. params vs loss -------------------------------------------------------------------------
def params_vs_loss_figure(rows, *, y_label="final validation loss", height=380,
                          empty_text=EMPTY_TEXT) -> go.Figure:
    """Final loss against trainable parameters (log x): LoRA ranks as a line in order of size,
    full fine-tuning and head-only as separate markers; error bars from "loss_std" when given.

    rows: dicts {"label", "params", "loss", "loss_std"?, "method"?: "lora" | "full" | "head"}.
    """
    groups: dict[str, list[dict]] = {"lora": [], "full": [], "head": []}
    for row in rows or ():
        try:
            params, loss = float(row["params"]), float(row["loss"])
        except (KeyError, TypeError, ValueError):
            continue
        if not (math.isfinite(params) and params > 0 and math.isfinite(loss)):
            continue
        method = str(row.get("method") or row.get("label", "lora")).lower()
        method = "full" if method.startswith("full") else "head" if method.startswith("head") else "lora"
        groups[method].append(row)
    fig = _figure()
    styles = {"lora": ("LoRA", RANK_COLORS[0], "circle", 10, "lines+markers+text", "top right"),
              "full": ("full fine-tuning", FULL_FT, "star", 16, "markers+text", "bottom center"),
              "head": ("head only", HEAD_ONLY, "diamond", 13, "markers+text", "top center")}
    y_ends = []
    for method, members in groups.items():
        if not members:
            continue
        members = sorted(members, key=lambda r: float(r["params"]))
        name, color, symbol, size, mode, textposition = styles[method]
        params = np.array([float(r["params"]) for r in members])
        loss = np.array([float(r["loss"]) for r in members])
        std = np.array([float(r["loss_std"]) if r.get("loss_std") is not None else np.nan for r in members])
        has_std = np.isfinite(std).any()
        labels = [str(r.get("label", "")) for r in members]
        y_ends += [loss - np.nan_to_num(std), loss + np.nan_to_num(std)]
        fig.add_trace(go.Scatter(
            x=params, y=loss, name=name, mode=mode, text=labels, textposition=textposition,
            textfont=dict(size=SMALL_SIZE, color=color),
            line=dict(color=color, width=2), marker=dict(color=color, size=size, symbol=symbol),
            error_y=dict(type="data", array=np.nan_to_num(std), visible=True, color=color, thickness=1.5, width=5)
            if has_std else None,
            customdata=[[float(sd), human_count(p)] for sd, p in zip(np.nan_to_num(std), params)],
            hovertemplate="%{text}: %{customdata[1]} trainable params (%{x:,})<br>"
                          + y_label + ": %{y:.5g}" + (" ± %{customdata[0]:.2g}" if has_std else "")
                          + "<extra></extra>"))
    _style(fig, title="Where returns diminish", height=height, x_title="trainable parameters (log scale)",
           y_title=y_label)
    fig.update_xaxes(type="log")
    ticks: list[float] = []  # label the points' own counts, skipping one too close to the last
    for x in sorted({float(x) for t in fig.data for x in t.x}):
        if not ticks or x / ticks[-1] >= 1.4:
            ticks.append(x)
    if ticks:
        fig.update_xaxes(tickvals=ticks, ticktext=[human_count(x) for x in ticks])
    if y_ends:  # room for the text labels above and below the points
        ends = np.concatenate(y_ends)
        lo, hi = float(np.min(ends)), float(np.max(ends))
        span = hi - lo if hi > lo else max(abs(hi) * 0.5, 1e-12)
        fig.update_yaxes(range=[lo - 0.12 * span, hi + 0.12 * span])
    if not fig.data:
        _empty(fig, empty_text)
    return fig


# -- 6. heat maps ------------------------------------------------------------------------------
MAX_HEATMAP_SIDE = 128


def _block_mean(m: np.ndarray, max_side: int = MAX_HEATMAP_SIDE) -> tuple[np.ndarray, tuple[int, int]]:
    """Block-average a 2-D array to at most `max_side` per side; returns it and the block size."""
    rows, cols = m.shape
    fr = fc = max(-(-rows // max_side), -(-cols // max_side))  # one factor: cells stay square
    if fr == 1:
        return m, (1, 1)
    pr, pc = -rows % fr, -cols % fc
    padded = np.pad(m.astype(float), ((0, pr), (0, pc)), constant_values=np.nan)
    with np.errstate(invalid="ignore"):
        out = np.nanmean(padded.reshape(padded.shape[0] // fr, fr, padded.shape[1] // fc, fc), axis=(1, 3))
    return out, (fr, fc)


def _prepared(matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(z, x, y, note): downsampled matrix, original column/row index of each block, title note."""
    m = np.asarray(matrix, dtype=float)
    if m.ndim == 1:
        m = m[None, :]
    z, (fr, fc) = _block_mean(m)
    note = ""
    if (fr, fc) != (1, 1):
        note = (f"<br><span style='font-size:12px'>block-averaged {m.shape[0]}×{m.shape[1]} → "
                f"{z.shape[0]}×{z.shape[1]}</span>")
    return z, np.arange(z.shape[1]) * fc, np.arange(z.shape[0]) * fr, note


def _sym_range(*arrays, zmid=0.0) -> float:
    peak = 0.0
    for a in arrays:
        a = np.asarray(a, dtype=float)
        if a.size and np.isfinite(a).any():
            peak = max(peak, float(np.nanmax(np.abs(a[np.isfinite(a)] - zmid))))
    return peak if peak > 0 else 1.0


_HEAT_HOVER = "row %{y}, column %{x}<br>value %{z:.4g}<extra></extra>"


def _square(fig: go.Figure, n_axes: int = 1) -> None:
    """Square cells, row 0 at the top, no grid, for each of the first n_axes subplots."""
    for i in range(1, n_axes + 1):
        s = "" if i == 1 else str(i)
        fig.update_layout({f"yaxis{s}": dict(scaleanchor=f"x{s}", scaleratio=1, autorange="reversed",
                                             constrain="domain", showgrid=False, zeroline=False, ticks=""),
                           f"xaxis{s}": dict(constrain="domain", showgrid=False, zeroline=False, ticks="")})


def heatmap_figure(matrix, *, title, zmid=0.0, zmax=None, colorscale="RdBu_r", height=320, show_scale=True,
                   empty_text=EMPTY_TEXT) -> go.Figure:
    """One matrix as a heat map with a colour range symmetric about `zmid` (±`zmax`, default max |m - zmid|).
    Matrices larger than 128 per side are block-averaged to <= 128 per side, noted in the title."""
    fig = _figure()
    m = np.asarray(matrix, dtype=float)
    if m.size == 0:
        _style(fig, title=title, height=height, showlegend=False)
        return _empty(fig, empty_text)
    z, x, y, note = _prepared(m)
    half = float(zmax) if zmax is not None else _sym_range(z, zmid=zmid)  # of what is shown
    fig.add_trace(go.Heatmap(
        z=z, x=x, y=y, zmin=zmid - half, zmax=zmid + half, zmid=zmid, colorscale=colorscale,
        showscale=show_scale, colorbar=dict(thickness=12, outlinewidth=0), hovertemplate=_HEAT_HOVER,
        name=title))
    _style(fig, title=title, height=height, showlegend=False)
    if note:
        fig.update_layout(title_subtitle=dict(text=note.replace("<br>", ""), font=dict(size=12)),
                          margin=dict(t=MARGIN_NO_LEGEND_T + 18))
    _square(fig)
    return fig


def delta_comparison_figure(true_delta, learned_delta, *, height=340, empty_text=EMPTY_TEXT) -> go.Figure:
    """True dW* and learned dW side by side on one shared symmetric colour range (max |value| of both)."""
    t = np.asarray(true_delta, dtype=float)
    learned = np.asarray(learned_delta, dtype=float)
    if t.size == 0 or learned.size == 0:
        fig = _figure()
        _style(fig, title="true dW* and learned dW", height=height, showlegend=False)
        return _empty(fig, empty_text)
    zt, xt, yt, note_t = _prepared(t)
    zl, xl, yl, note_l = _prepared(learned)
    titles = ("true dW*" + note_t, "learned dW = (alpha/r) B A" + note_l)
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles, horizontal_spacing=0.08)
    fig.add_trace(go.Heatmap(z=zt, x=xt, y=yt, coloraxis="coloraxis", name="true dW*", hovertemplate=_HEAT_HOVER),
                  row=1, col=1)
    fig.add_trace(go.Heatmap(z=zl, x=xl, y=yl, coloraxis="coloraxis", name="learned dW",
                             hovertemplate=_HEAT_HOVER), row=1, col=2)
    half = _sym_range(zt, zl)  # of what is shown (after any block averaging)
    _style(fig, title="What the adapter learned", height=height, showlegend=False)
    fig.update_layout(margin=dict(t=MARGIN_NO_LEGEND_T + 24 + (18 if note_t or note_l else 0), b=36))
    fig.update_layout(coloraxis=dict(colorscale="RdBu_r", cmin=-half, cmax=half, cmid=0.0,
                                     colorbar=dict(thickness=12, outlinewidth=0)))
    fig.update_annotations(font=dict(size=SMALL_SIZE + 1))
    _square(fig, 2)
    return fig


def matrices_figure(a, b, delta, *, height=300, empty_text=EMPTY_TEXT) -> go.Figure:
    """The Learn page's A (r × d), B (d × r) and B A (d × d), side by side on one symmetric colour scale;
    subplot titles give each shape and parameter count."""
    mats = [np.atleast_2d(np.asarray(m, dtype=float)) for m in (a, b, delta)]
    if any(m.size == 0 for m in mats):
        fig = _figure()
        _style(fig, title="LoRA's matrices", height=height, showlegend=False)
        return _empty(fig, empty_text)
    names = ("A", "B", "B A")
    shown = [_prepared(m) for m in mats]
    titles = []
    for name, m, (_, _, _, note) in zip(names, mats, shown):
        what = "params" if name != "B A" else "entries, never stored"
        titles.append(f"{name} ({m.shape[0]} × {m.shape[1]})<br>{human_count(m.size)} {what}"
                      + (" (block-averaged)" if note else ""))
    # widths follow the number of columns, with a floor so the thin B keeps a readable title
    cols = np.array([m.shape[1] for m in mats], dtype=float)
    widths = np.maximum(cols / cols.sum(), 0.2)
    widths = list(widths / widths.sum())
    fig = make_subplots(rows=1, cols=3, subplot_titles=titles, column_widths=widths, horizontal_spacing=0.06)
    half = _sym_range(*(z for z, _, _, _ in shown))
    for i, (name, (z, x, y, _)) in enumerate(zip(names, shown), start=1):
        fig.add_trace(go.Heatmap(z=z, x=x, y=y, coloraxis="coloraxis", name=name, hovertemplate=_HEAT_HOVER),
                      row=1, col=i)
    _style(fig, title="ΔW = B A: two thin matrices make one big update", height=height, showlegend=False)
    fig.update_layout(margin=dict(t=MARGIN_NO_LEGEND_T + 42, b=16, l=16))
    fig.update_layout(coloraxis=dict(colorscale="RdBu_r", cmin=-half, cmax=half, cmid=0.0,
                                     colorbar=dict(thickness=12, outlinewidth=0)))
    fig.update_annotations(font=dict(size=SMALL_SIZE))
    _square(fig, 3)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, constraintoward="top")
    return fig


# -- 7. singular values ------------------------------------------------------------------------
def singular_values_figure(series, *, rank=None, log_y=False, height=320, empty_text=EMPTY_TEXT) -> go.Figure:
    """Singular values per series (dict name -> 1-D array) over index 1..k, lines + markers;
    a dashed vertical line at `rank` labelled "rank r"."""
    fig = _figure()
    names = list((series or {}).keys())
    k = 0
    for name in names:
        s = np.asarray(series[name], dtype=float).ravel()
        idx = np.flatnonzero(np.isfinite(s))
        if not idx.size:
            continue
        low = str(name).lower()
        color = (THEORY_FLOOR if low.startswith("true") else ADAPTED_MODEL if low.startswith("learned")
                 else RANK_COLORS[k % len(RANK_COLORS)])
        if color in RANK_COLORS:
            k += 1
        fig.add_trace(go.Scatter(
            x=idx + 1, y=s[idx], name=str(name), mode="lines+markers", line=dict(color=color, width=2),
            marker=dict(size=7, color=color),
            hovertemplate=f"{name}: σ<sub>%{{x}}</sub> = %{{y:.5g}}<extra></extra>"))
    if rank is not None and fig.data:
        fig.add_vline(x=rank, line=dict(color=FULL_FT, dash="dash", width=1.5),
                      label=dict(text=f"rank r = {rank}", textposition="end", yanchor="top", xanchor="left",
                                 textangle=0, padding=6, font=dict(size=12, color=FULL_FT)))
    _style(fig, title="Singular values", height=height, x_title="index i",
           y_title="singular value σ<sub>i</sub>", hovermode="x unified")
    k_max = max((len(t.x) for t in fig.data), default=1)
    fig.update_xaxes(tickformat="d", range=[0.4, max(k_max, rank or 0) + 0.6])
    if log_y:
        fig.update_yaxes(type="log")
    else:
        fig.update_yaxes(rangemode="tozero")
    if not fig.data:
        _empty(fig, empty_text)
    return fig


# -- 8. prediction grid ------------------------------------------------------------------------
NOMINAL_WIDTH = 700
PRED_GRID_TOP = 44


def _short(name: str, n: int = 9) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


def prediction_grid_figure(images, true_labels, base_pred, adapted_pred, class_names, *, n_cols=8, height=None,
                           ink_is_high=True, empty_text=EMPTY_TEXT) -> go.Figure:
    """Sample images with the base model's and the adapted model's predictions.

    images (n, h, w) in [0, 1] (uint8 is read as 0..255); drawn dark on white (`ink_is_high`: the
    ink has the high values, as in MNIST). One heat map of a tiled mosaic plus one caption per
    image -- the true class, then "base <class> ✓/✗" and "LoRA <class> ✓/✗", green when right and
    red when wrong -- with a thin frame green or red after LoRA's answer. Long class names that would
    not fit under an image are shortened ("LoRA ✓" when right); hovering an image shows them in full.
    """
    imgs = np.asarray(images)
    n = 0 if imgs.size == 0 else min(len(imgs), len(true_labels), len(base_pred), len(adapted_pred))
    fig = _figure()
    title = "Frozen base vs LoRA on new images"
    if n == 0 or imgs.ndim != 3:
        _style(fig, title=title, height=height or 300, showlegend=False)
        return _empty(fig, empty_text)
    imgs = imgs[:n].astype(float)
    if np.asarray(images).dtype == np.uint8:
        imgs = imgs / 255.0
    ink = np.clip(imgs if ink_is_high else 1.0 - imgs, 0.0, 1.0)  # 1 = dark ink
    h, w = ink.shape[1:]
    n_cols = max(1, min(int(n_cols), n))
    n_rows = -(-n // n_cols)
    pad = max(1, round(0.12 * max(h, w)))
    # sized for a ~700 px wide container (Streamlit's centred layout); three 12 px caption lines
    # need about 50 px under each image. Narrower screens: pass fewer columns.
    px_per_unit = min((NOMINAL_WIDTH - 16) / (n_cols * (w + 2 * pad)), 110.0 / w)  # images <= ~110 px
    caption = int(math.ceil(50.0 / px_per_unit))
    cell_w, cell_h = w + 2 * pad, h + pad + caption
    mosaic = np.full((n_rows * cell_h, n_cols * cell_w), np.nan, dtype=np.float32)
    names = [str(c) for c in class_names]
    budget = max(8, int(cell_w * px_per_unit / 6.8))  # characters of 12 px text that fit under an image

    def cname(i) -> str:
        i = int(i)
        return names[i] if 0 <= i < len(names) else str(i)

    used = np.concatenate([np.asarray(a[:n]).ravel() for a in (true_labels, base_pred, adapted_pred)])
    names_fit = max(len(cname(i)) for i in used) + 7 <= budget  # "LoRA <name> ✓"

    def verdict(who: str, guess: int, ok: bool) -> str:
        mark = "✓" if ok else "✗"
        if names_fit:
            text = f"{who} {cname(guess)} {mark}"
        else:  # long names: a right answer needs no name (the true class is above), a wrong one a short one
            text = f"{who} {mark}" if ok else f"{who} {_short(cname(guess), max(4, budget - len(who) - 3))} {mark}"
        return f"<span style='color:{CORRECT if ok else WRONG}'>{text}</span>"

    centres_x, centres_y, hover = [], [], []
    for i in range(n):
        r, c = divmod(i, n_cols)
        top, left = r * cell_h + pad, c * cell_w + pad
        mosaic[top:top + h, left:left + w] = ink[i]
        truth, base, lora = int(true_labels[i]), int(base_pred[i]), int(adapted_pred[i])
        parts = [f"<b>{_short(cname(truth), budget)}</b>", verdict("base", base, base == truth),
                 verdict("LoRA", lora, lora == truth)]
        centres_x.append(left + (w - 1) / 2)
        centres_y.append(top + (h - 1) / 2)
        hover.append(f"true: {cname(truth)}<br>base: {cname(base)} {'✓' if base == truth else '✗'}"
                     f"<br>LoRA: {cname(lora)} {'✓' if lora == truth else '✗'}")
        fig.add_annotation(x=left + (w - 1) / 2, y=top + h - 0.5 + pad * 0.25, xref="x", yref="y",
                           text="<br>".join(parts), showarrow=False, yanchor="top", xanchor="center",
                           font=dict(size=12, color="#222222"), align="center")
        fig.add_shape(type="rect", x0=left - 0.5, x1=left + w - 0.5, y0=top - 0.5, y1=top + h - 0.5,
                      line=dict(color=CORRECT if lora == truth else WRONG, width=1.5), layer="above")
    fig.add_trace(go.Heatmap(
        z=mosaic, zmin=0.0, zmax=1.0, colorscale=[[0.0, "#ffffff"], [1.0, "#111111"]], showscale=False,
        hoverinfo="skip", name="images"))
    fig.add_trace(go.Scatter(  # invisible, one point per image: the full caption on hover (and tap)
        x=centres_x, y=centres_y, mode="markers", marker=dict(size=max(8, int(w * px_per_unit)), opacity=0),
        hovertext=hover, hoverinfo="text", showlegend=False, name="captions"))
    if height is None:
        height = int(PRED_GRID_TOP + 8 + n_rows * cell_h * px_per_unit)
    _style(fig, title=title, height=height, showlegend=False)
    fig.update_layout(margin=dict(l=8, r=8, t=PRED_GRID_TOP, b=8))
    fig.update_xaxes(visible=False, range=[-0.5, n_cols * cell_w - 0.5], constrain="domain")
    fig.update_yaxes(visible=False, range=[n_rows * cell_h - 0.5, -0.5], scaleanchor="x", scaleratio=1,
                     constrain="domain", constraintoward="top")
    return fig


# -- 9. savings and memory ---------------------------------------------------------------------
def savings_figure(rows, *, height=380, empty_text="Pick a model and target modules") -> go.Figure:
    """Trainable parameters, full fine-tuning vs LoRA, per model (grouped horizontal bars, log x).
    rows: dicts {"label", "full", "lora"}."""
    rows = [r for r in (rows or ()) if r.get("full") and r.get("lora")]
    fig = _figure()
    if rows:
        labels = [str(r["label"]) for r in rows]
        full = np.array([float(r["full"]) for r in rows])
        lora = np.array([float(r["lora"]) for r in rows])
        pct = 100.0 * lora / full
        fig.add_trace(go.Bar(
            y=labels, x=full, orientation="h", name="full fine-tuning", marker_color=FULL_FT,
            text=[human_count(v) for v in full], textposition="outside", cliponaxis=False,
            hovertemplate="%{y}<br>full fine-tuning: %{x:,} trainable params<extra></extra>"))
        fig.add_trace(go.Bar(
            y=labels, x=lora, orientation="h", name="LoRA", marker_color=ADAPTED_MODEL,
            text=[f"{human_count(v)} ({p:.2g}%)" for v, p in zip(lora, pct)], textposition="outside",
            cliponaxis=False, customdata=pct,
            hovertemplate="%{y}<br>LoRA: %{x:,} trainable params (%{customdata:.3g}% of full)<extra></extra>"))
        lo, hi = math.log10(lora.min()), math.log10(full.max())
        fig.update_xaxes(range=[max(0.0, lo - 1.0), hi + 0.9])
    _style(fig, title="Trainable parameters: full fine-tuning vs LoRA", height=height,
           x_title="trainable parameters (log scale)")
    fig.update_layout(barmode="group", bargap=0.25, bargroupgap=0.05)
    fig.update_xaxes(type="log")
    fig.update_yaxes(autorange="reversed", automargin=True)
    if rows:  # "LLaMA-2 7B<br>(q,v, r=8)": long labels on two lines leave the bars room on a phone
        fig.update_yaxes(tickvals=labels, ticktext=[
            lab.replace(" (", "<br>(", 1) if len(lab) > 14 else lab for lab in labels])
    if not rows:
        _empty(fig, empty_text)
    return fig


_MEMORY_KEYS = (("weights", ("weights",)), ("gradients", ("gradients",)),
                ("optimizer state", ("optimizer", "optimizer_state", "optimizer state")))


def _byte_unit(peak: float) -> tuple[float, str]:
    for scale, unit in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "KB")):
        if peak >= scale:
            return scale, unit
    return 1.0, "B"


def memory_figure(rows, *, height=360, empty_text="Pick a model and target modules") -> go.Figure:
    """Training memory per method as stacked bars: weights / gradients / optimizer state (bytes in).

    rows: dicts {"label": "full fine-tuning", "weights": b, "gradients": b, "optimizer": b}
    ("optimizer_state" also accepted). The y unit (KB, MB, GB, TB) follows the largest total.
    """
    rows = list(rows or ())
    fig = _figure()

    def get(row, keys):
        for key in keys:
            if row.get(key) is not None:
                return float(row[key])
        return 0.0

    labels = [str(r.get("label", r.get("method", ""))) for r in rows]
    parts = {name: np.array([get(r, keys) for r in rows]) for name, keys in _MEMORY_KEYS}
    totals = sum(parts.values()) if rows else np.zeros(0)
    if rows and float(np.max(totals)) > 0:
        scale, unit = _byte_unit(float(np.max(totals)))
        for name, values in parts.items():
            fig.add_trace(go.Bar(
                x=labels, y=values / scale, name=name, marker_color=MEMORY_COLORS[name],
                text=[human_bytes(v) if v > 0 else "" for v in values], textposition="inside",
                insidetextanchor="middle", customdata=[human_bytes(v) for v in values],
                hovertemplate=f"%{{x}}<br>{name}: %{{customdata}} (%{{y:.4g}} {unit})<extra></extra>"))
        peak = float(np.max(totals))
        for i, (label, total) in enumerate(zip(labels, totals)):
            # segments under ~6% of the axis are too thin for their label: name them above the bar
            thin = [f"{name} {human_bytes(v[i])}" for name, v in parts.items() if 0 < v[i] < 0.06 * peak]
            text = f"<b>{human_bytes(total)}</b>" + (
                "<br><span style='font-size:12px'>" + " · ".join(thin) + "</span>" if thin else "")
            fig.add_annotation(x=label, y=total / scale, text=text, showarrow=False,
                               yanchor="bottom", yshift=2, font=dict(size=14))
        fig.update_yaxes(range=[0, peak / scale * 1.2])
        y_title = f"memory ({unit})"
    else:
        y_title = "memory"
    _style(fig, title="Training memory", height=height, y_title=y_title)
    fig.update_layout(barmode="stack", bargap=0.35, uniformtext=dict(minsize=11, mode="hide"))
    if not fig.data:
        _empty(fig, empty_text)
    return fig


# -- 10. multimodal ----------------------------------------------------------------------------
def branch_figure(scores, *, metric="accuracy", height=320, empty_text=EMPTY_TEXT) -> go.Figure:
    """Validation score with each modality's adapter switched on, in the dict's order
    (e.g. both / text only / image only / neither (base)). Accuracy (fractions) is shown in %."""
    items = [(str(k), float(v)) for k, v in (scores or {}).items() if v is not None and math.isfinite(float(v))]
    percent = "accuracy" in metric
    scale = 100.0 if percent else 1.0
    fig = _figure()
    if items:
        labels = [k for k, _ in items]
        values = np.array([v for _, v in items]) * scale
        colors = []
        for label in labels:
            low = label.lower()
            if "base" in low or low.startswith("neither"):
                colors.append(BASE_MODEL)
            elif low.startswith("both"):
                colors.append(ADAPTED_MODEL)
            else:
                colors.append(_rgba(ADAPTED_MODEL, 0.55))
        text = [f"{v:.1f}%" if percent else f"{v:.4g}" for v in values]
        fig.add_trace(go.Bar(
            x=labels, y=values, name=metric, marker_color=colors, text=text, textposition="outside",
            cliponaxis=False,
            hovertemplate="%{x}: %{y:" + (".2f}%" if percent else ".5g}") + "<extra></extra>"))
        top = 100.0 if percent else float(np.nanmax(values)) * 1.15
        fig.update_yaxes(range=[0, top * (1.12 if percent else 1.0)] if top > 0 else None)
    y_title = f"validation {metric} (%)" if percent else f"validation {metric}"
    _style(fig, title="Which adapter matters", height=height, y_title=y_title, showlegend=False)
    if percent:
        fig.update_yaxes(ticksuffix="%")
    if not items:
        _empty(fig, empty_text)
    return fig


def param_split_figure(rows, *, height=320, empty_text=EMPTY_TEXT) -> go.Figure:
    """Frozen (grey) and trainable (coloured) parameters per branch, stacked horizontal bars on a linear
    axis. rows: dicts {"branch", "frozen", "trainable"}."""
    rows = list(rows or ())
    fig = _figure()
    if rows:
        labels = [str(r.get("branch", r.get("label", ""))) for r in rows]
        frozen = np.array([float(r.get("frozen") or 0) for r in rows])
        trainable = np.array([float(r.get("trainable") or 0) for r in rows])
        total = np.maximum(frozen + trainable, 1)
        fig.add_trace(go.Bar(
            y=labels, x=frozen, orientation="h", name="frozen", marker_color=FROZEN,
            text=[human_count(v) if v > 0 else "" for v in frozen], textposition="inside",
            insidetextanchor="middle", textangle=0, textfont=dict(color="#222222"),
            customdata=100 * frozen / total,
            hovertemplate="%{y}: %{x:,} frozen (%{customdata:.3g}%)<extra></extra>"))
        fig.add_trace(go.Bar(
            y=labels, x=trainable, orientation="h", name="trainable", marker_color=ADAPTED_MODEL,
            text=[f"{human_count(v)} trainable" for v in trainable], textposition="outside", cliponaxis=False,
            customdata=100 * trainable / total,
            hovertemplate="%{y}: %{x:,} trainable (%{customdata:.3g}%)<extra></extra>"))
        fig.update_xaxes(range=[0, float(np.max(frozen + trainable)) * 1.35])
    _style(fig, title="Parameters per branch", height=height, x_title="parameters")
    fig.update_layout(barmode="stack", bargap=0.35, uniformtext=dict(minsize=11, mode="hide"))
    fig.update_yaxes(autorange="reversed", automargin=True)
    if not rows:
        _empty(fig, empty_text)
    return fig
