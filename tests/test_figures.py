"""The figure builders of lab_ui/figures.py: real properties of the returned figures, no browser."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

from lab_ui import figures as F

ROOT = Path(__file__).resolve().parent.parent


def names(fig):
    return [t.name for t in fig.data]


def annotation_texts(fig):
    return [a.text for a in fig.layout.annotations]


def has_empty_note(fig, text=F.EMPTY_TEXT):
    return any(a.text == text for a in fig.layout.annotations)


def hlines(fig):
    """y of every horizontal line shape, sorted."""
    return sorted(s.y0 for s in fig.layout.shapes if s.type == "line" and s.y0 == s.y1 and s.yref == "y")


# -- helpers -----------------------------------------------------------------------------------
@pytest.mark.parametrize("n, text", [
    (0, "0"), (7, "7"), (4096, "4,096"), (9_999, "9,999"), (65_536, "65.5K"), (294_912, "295K"),
    (999_999, "1M"), (4_194_304, "4.19M"), (37_748_736, "37.7M"), (124_439_808, "124M"),
    (6_738_415_616, "6.74B"), (175e9, "175B"), (1.2e12, "1.2T"), (-4096, "-4,096"),
])
def test_human_count(n, text):
    assert F.human_count(n) == text


@pytest.mark.parametrize("n, text", [
    (0, "0 B"), (512, "512 B"), (1_000, "1 KB"), (2_048, "2.05 KB"), (75.5e6, "75.5 MB"),
    (999_999, "1 MB"), (1.2e9, "1.2 GB"), (13.48e9, "13.5 GB"), (3.5e12, "3.5 TB"),
])
def test_human_bytes(n, text):
    assert F.human_bytes(n) == text


def test_human_helpers_survive_nan_and_none():
    assert F.human_count(float("nan")) == "—"
    assert F.human_bytes(None) == "—"


# -- downsample --------------------------------------------------------------------------------
def test_downsample_short_input_is_returned_as_is():
    x, y = np.arange(10), np.linspace(1, 0, 10)
    dx, dy = F.downsample(x, y, max_points=800)
    np.testing.assert_array_equal(dx, x)
    np.testing.assert_array_equal(dy, y)


@pytest.mark.parametrize("max_points", [800, 801, 50])
def test_downsample_keeps_ends_extremes_and_every_spike_on_100k_points(max_points):
    n = 100_000
    rng = np.random.default_rng(0)
    x = np.arange(n)
    y = 1.0 + 0.01 * rng.standard_normal(n)
    spikes = np.arange(1_000, n - 1_000, 9_973)  # far apart: at most one per bucket
    dips = spikes + 4_000
    y[spikes] = 50.0 + np.arange(spikes.size)
    y[dips] = -50.0 - np.arange(dips.size)
    dx, dy = F.downsample(x, y, max_points=max_points)
    assert dx.size == dy.size <= max_points
    assert dx[0] == 0 and dx[-1] == n - 1  # first and last
    assert np.all(np.diff(dx) > 0)  # in order, no repeats
    np.testing.assert_array_equal(dy, y[dx])  # real points, not interpolated
    assert dy.max() == y.max() and dy.min() == y.min()
    assert set(spikes) <= set(dx.tolist()) and set(dips) <= set(dx.tolist())


def test_downsample_keeps_each_bucket_min_and_max():
    n, max_points = 10_001, 202  # 100 buckets of 100 points between the first and the last
    y = np.sin(np.arange(n) * 0.37) * np.arange(n)
    dx, _ = F.downsample(np.arange(n), y, max_points=max_points)
    kept = set(dx.tolist())
    size = -(-(n - 2) // 100)
    for lo in range(1, n - 1, size):
        hi = min(lo + size, n - 1)
        assert lo + int(np.argmin(y[lo:hi])) in kept
        assert lo + int(np.argmax(y[lo:hi])) in kept


# -- ema ---------------------------------------------------------------------------------------
def test_downsample_ignores_nans():
    y = np.ones(1_000)
    y[100:400] = np.nan
    y[700] = 5.0
    dx, dy = F.downsample(np.arange(1_000), y, max_points=100)
    assert len(dx) <= 100 and 700 in dx and not np.isnan(dy[1:-1]).any()


def test_ema_matches_a_hand_computed_three_step_example():
    # smoothing 0.5: last = 0.5, 1.25, 2.125; debias by 1 - 0.5^k = 0.5, 0.75, 0.875
    np.testing.assert_allclose(F.ema([1.0, 2.0, 3.0], 0.5), [1.0, 1.25 / 0.75, 2.125 / 0.875])


def test_ema_zero_smoothing_is_the_raw_series():
    y = np.array([3.0, 1.0, 2.0])
    np.testing.assert_array_equal(F.ema(y, 0.0), y)


def test_ema_skips_nans_without_moving():
    out = F.ema([1.0, np.nan, 2.0, np.inf, 3.0], 0.5)
    assert np.isnan(out[1]) and np.isnan(out[3])
    np.testing.assert_allclose(out[[0, 2, 4]], F.ema([1.0, 2.0, 3.0], 0.5))
    assert np.isnan(F.ema([np.nan, np.nan], 0.6)).all()
    assert F.ema([], 0.6).size == 0


def test_ema_matches_the_tensorboard_loop_across_blocks():
    y = np.random.default_rng(1).random(1_000) * 10
    for s in (0.3, 0.9, 0.999):
        last, expect = 0.0, []
        for i, v in enumerate(y, start=1):
            last = last * s + (1 - s) * v
            expect.append(last / (1 - s ** i))
        np.testing.assert_allclose(F.ema(y, s), expect, rtol=1e-10)


def test_ema_refuses_smoothing_outside_0_1():
    with pytest.raises(ValueError, match="smoothing"):
        F.ema([1.0], 1.0)


# -- loss figure -------------------------------------------------------------------------------
def test_loss_figure_traces_data_and_layout():
    steps = np.arange(50)
    loss = np.exp(-steps / 10.0) + 0.1
    val = np.full(50, np.nan)
    val[::10] = loss[::10] * 1.1  # validation only every 10 steps
    fig = F.loss_figure(steps, loss, val_steps=steps, val_loss=val, smoothing=0.6, uirevision="run-1")
    assert isinstance(fig, go.Figure)
    assert names(fig) == ["train", "train (smoothed)", "validation"]
    raw, smooth, v = fig.data
    np.testing.assert_array_equal(raw.x, steps)
    np.testing.assert_allclose(raw.y, loss)
    np.testing.assert_allclose(smooth.y, F.ema(loss, 0.6))
    np.testing.assert_array_equal(v.x, steps[::10])  # NaNs dropped
    np.testing.assert_allclose(v.y, val[::10])
    assert v.mode == "lines+markers"
    assert raw.line.color == F.TRAIN and smooth.line.color == F.TRAIN_SMOOTHED and v.line.color == F.VALIDATION
    assert fig.layout.yaxis.type == "log"
    assert fig.layout.uirevision == "run-1"
    assert fig.layout.xaxis.title.text == "step" and fig.layout.yaxis.title.text == "loss"
    assert fig.layout.template.layout.paper_bgcolor is not None  # plotly_white applied
    legend = fig.layout.legend  # horizontal, above the plot, under the title
    assert legend.orientation == "h" and legend.yref == "container" and legend.yanchor == "top"
    assert (1 - legend.y) * fig.layout.height == pytest.approx(F.LEGEND_TOP_PX)
    assert (1 - legend.y) * fig.layout.height < fig.layout.margin.t
    assert fig.layout.height == 380 and fig.layout.font.size == 15
    assert "%{y" in raw.hovertemplate
    assert not has_empty_note(fig)


def test_loss_figure_linear_axis_and_no_smoothing():
    fig = F.loss_figure([0, 1, 2], [3.0, 2.0, 1.0], smoothing=0.0, log_y=False)
    assert names(fig) == ["train"]
    assert fig.layout.yaxis.type == "linear"
    np.testing.assert_allclose(fig.data[0].y, [3.0, 2.0, 1.0])


def test_loss_figure_drops_nan_train_points():
    fig = F.loss_figure([0, 1, 2, 3], [1.0, np.nan, 0.5, None], smoothing=0.0)
    np.testing.assert_array_equal(fig.data[0].x, [0, 2])
    np.testing.assert_allclose(fig.data[0].y, [1.0, 0.5])


def test_loss_figure_floors_are_labelled_lines_at_their_values():
    floors = {"population": 0.021, "train_optimum": 0.0092, "noise": 0.01}
    fig = F.loss_figure(np.arange(100), np.linspace(1, 0.03, 100), floors=floors)
    assert hlines(fig) == sorted(floors.values())
    texts = " ".join(annotation_texts(fig))
    assert "theory floor for rank r (Eckart–Young): 0.021" in texts
    assert "best possible on this training set: 0.0092" in texts
    assert "noise floor: 0.01" in texts
    dashes = {s.y0: s.line.dash for s in fig.layout.shapes}
    assert dashes[0.01] == "dot" and dashes[0.021] == "dash"
    colors = {s.y0: s.line.color for s in fig.layout.shapes}
    assert colors[0.021] == F.THEORY_FLOOR and colors[0.01] == F.NOISE_FLOOR
    lo, hi = fig.layout.yaxis.range  # log10 units: every floor and the data are in view
    assert lo < np.log10(0.0092) and hi > np.log10(1.0)


def test_loss_figure_floor_partial_keys_and_unplottable_values():
    fig = F.loss_figure(np.arange(10), np.linspace(1, 0.1, 10), floors={"noise": 0.0, "population": 0.05})
    assert hlines(fig) == [0.05]  # 0 cannot be drawn on a log axis
    fig = F.loss_figure(np.arange(10), np.linspace(1, 0.1, 10), floors={"noise": 0.0}, log_y=False)
    assert hlines(fig) == [0.0]


def test_loss_figure_empty_run_shows_press_play():
    for fig in (F.loss_figure([], []), F.loss_figure(np.array([]), np.array([]), val_steps=[], val_loss=[]),
                F.loss_figure([0, 1], [np.nan, np.nan]), F.loss_figure(None, None)):
        assert has_empty_note(fig)
        assert len(fig.data) == 0
    fig = F.loss_figure([], [], floors={"population": 0.02, "noise": 0.01})
    assert has_empty_note(fig) and hlines(fig) == [0.01, 0.02]  # the target is shown before training


def test_loss_figure_only_validation_is_not_empty():
    fig = F.loss_figure([], [], val_steps=[0, 10], val_loss=[1.0, 0.5])
    assert names(fig) == ["validation"] and not has_empty_note(fig)


def test_loss_figure_previous_runs_are_ghosts():
    fig = F.loss_figure([0, 1, 2], [3.0, 2.0, 1.0],
                        previous=[{"label": "previous: r=2", "steps": [0, 1, 2], "loss": [4.0, 3.0, 2.0]}])
    assert names(fig)[0] == "previous: r=2"
    assert fig.data[0].line.color == F.PREVIOUS_RUN and fig.data[0].line.dash == "dash"


def test_loss_figure_100k_steps_stays_small():
    n = 100_000
    rng = np.random.default_rng(2)
    steps = np.arange(n)
    loss = np.exp(-steps / 20_000) + 0.05 * rng.random(n)
    val = np.full(n, np.nan)
    val[::50] = loss[::50]
    fig = F.loss_figure(steps, loss, val_steps=steps, val_loss=val,
                        floors={"population": 0.02, "noise": 0.01, "train_optimum": 0.009})
    for trace in fig.data:
        assert len(trace.x) <= 800
    raw = fig.data[0]
    assert raw.x[0] == 0 and raw.x[-1] == n - 1 and max(raw.y) == loss.max()
    size = len(fig.to_json())
    assert size < 200_000, size


# -- metric figure -----------------------------------------------------------------------------
def test_metric_figure_accuracy_in_percent_with_references():
    fig = F.metric_figure([0, 100, np.nan, 300], [0.2, 0.5, 0.6, np.nan], baseline=0.19, full_ft=0.93)
    assert names(fig) == ["validation accuracy"]
    np.testing.assert_array_equal(fig.data[0].x, [0, 100])
    np.testing.assert_allclose(fig.data[0].y, [20.0, 50.0])
    assert hlines(fig) == pytest.approx([19.0, 93.0])
    texts = " ".join(annotation_texts(fig))
    assert "frozen base: 19.0%" in texts and "full fine-tuning: 93.0%" in texts
    assert fig.layout.yaxis.ticksuffix == "%" and "(%)" in fig.layout.yaxis.title.text
    assert fig.layout.uirevision == "metric" and fig.layout.height == 300


def test_metric_figure_bits_per_character():
    fig = F.metric_figure([0, 10], [3.2, 2.1], name="bits per character", percent=False, baseline=3.4)
    np.testing.assert_allclose(fig.data[0].y, [3.2, 2.1])
    assert hlines(fig) == [3.4]
    assert "bits per character" in fig.layout.yaxis.title.text and not fig.layout.yaxis.ticksuffix


def test_metric_figure_empty():
    fig = F.metric_figure([], [], baseline=0.2)
    assert has_empty_note(fig) and hlines(fig) == [pytest.approx(20.0)]


# -- compare figure ----------------------------------------------------------------------------
def test_compare_figure_colours_bands_and_axes():
    steps = np.arange(20)
    base = np.linspace(1, 0.1, 20)
    curves = [
        {"label": "r=1", "steps": steps, "loss": base * 2, "band_low": base * 1.8, "band_high": base * 2.2},
        {"label": "full", "steps": steps, "loss": base},
        {"label": "r=2", "steps": steps, "loss": base * 1.5},
        {"label": "head", "steps": steps, "loss": base * 3},
    ]
    fig = F.compare_figure(curves, floors={"noise": 0.05}, uirevision="cmp")
    lines = [t for t in fig.data if t.showlegend is not False]
    assert [t.name for t in lines] == ["r=1", "full", "r=2", "head"]
    colors = {t.name: t.line.color for t in lines}
    assert colors == {"r=1": F.RANK_COLORS[0], "full": F.FULL_FT, "r=2": F.RANK_COLORS[1], "head": F.HEAD_ONLY}
    bands = [t for t in fig.data if t.showlegend is False]
    assert len(bands) == 2 and bands[1].fill == "tonexty"
    np.testing.assert_allclose(bands[0].y, base * 2.2)
    np.testing.assert_allclose(bands[1].y, base * 1.8)
    assert bands[1].fillcolor.startswith("rgba(31,119,180,")  # the curve's colour, lighter
    np.testing.assert_allclose(lines[0].y, base * 2)
    assert fig.layout.yaxis.type == "log" and fig.layout.uirevision == "cmp"
    assert hlines(fig) == [0.05] and fig.layout.height == 420
    assert F.compare_figure(curves, log_y=False).layout.yaxis.type == "linear"


def test_compare_figure_drops_nans_and_handles_empty():
    fig = F.compare_figure([{"label": "r=4", "steps": [0, 1, 2], "loss": [1.0, np.nan, 0.5]}])
    np.testing.assert_array_equal(fig.data[0].x, [0, 2])
    assert has_empty_note(F.compare_figure([]))
    assert has_empty_note(F.compare_figure([{"label": "r=1", "steps": [], "loss": []}]))


# -- params vs loss ----------------------------------------------------------------------------
def test_params_vs_loss_figure():
    rows = [
        {"label": "r=4", "params": 512, "loss": 0.2, "loss_std": 0.01, "method": "lora"},
        {"label": "r=1", "params": 128, "loss": 0.5, "loss_std": 0.02, "method": "lora"},
        {"label": "full", "params": 4096, "loss": 0.05, "method": "full"},
        {"label": "head", "params": 640, "loss": 0.4, "method": "head"},
        {"label": "r=2", "params": 256, "loss": float("nan"), "method": "lora"},  # diverged: left out
    ]
    fig = F.params_vs_loss_figure(rows)
    assert names(fig) == ["LoRA", "full fine-tuning", "head only"]
    lora, full, head = fig.data
    np.testing.assert_array_equal(lora.x, [128, 512])  # in order of params
    np.testing.assert_allclose(lora.y, [0.5, 0.2])
    assert list(lora.text) == ["r=1", "r=4"] and "lines" in lora.mode and "text" in lora.mode
    np.testing.assert_allclose(lora.error_y.array, [0.02, 0.01])
    assert full.marker.symbol == "star" and full.marker.color == F.FULL_FT and "lines" not in full.mode
    assert head.marker.color == F.HEAD_ONLY
    assert full.error_y.array is None
    assert fig.layout.xaxis.type == "log" and fig.layout.title.text == "Where returns diminish"
    assert list(fig.layout.xaxis.ticktext) == ["128", "512", "4,096"]  # own counts; 640 too close to 512
    assert fig.layout.yaxis.title.text == "final validation loss"
    assert has_empty_note(F.params_vs_loss_figure([]))


# -- heat maps ---------------------------------------------------------------------------------
def test_heatmap_figure_small_matrix_is_shown_exactly():
    m = np.array([[1.0, -2.0], [0.5, 0.0]])
    fig = F.heatmap_figure(m, title="dW")
    (trace,) = fig.data
    np.testing.assert_array_equal(trace.z, m)
    assert (trace.zmin, trace.zmax) == (-2.0, 2.0)  # symmetric about 0
    assert fig.layout.title.text == "dW"
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.yaxis.autorange == "reversed"
    assert F.heatmap_figure(m, title="dW", zmax=5).data[0].zmax == 5


def test_heatmap_figure_block_averages_above_128():
    rng = np.random.default_rng(3)
    m = rng.standard_normal((256, 300))
    fig = F.heatmap_figure(m, title="big")
    z = np.asarray(fig.data[0].z)
    assert max(z.shape) <= 128 and z.shape == (86, 100)  # one factor (3) for both sides
    np.testing.assert_allclose(z[0, 0], m[:3, :3].mean())
    assert fig.layout.title.text == "big" and "block-averaged 256×300" in fig.layout.title.subtitle.text
    z128 = np.asarray(F.heatmap_figure(np.ones((128, 128)), title="t").data[0].z)
    assert z128.shape == (128, 128)
    z129 = np.asarray(F.heatmap_figure(np.ones((129, 10)), title="t").data[0].z)
    assert z129.shape == (65, 5)


def test_heatmap_figure_empty():
    assert has_empty_note(F.heatmap_figure(np.zeros((0, 0)), title="dW"))


def test_delta_comparison_figure_shares_one_symmetric_range():
    true = np.array([[1.0, -3.0], [0.0, 2.0]])
    learned = np.array([[0.5, 4.0], [0.0, -1.0]])
    fig = F.delta_comparison_figure(true, learned)
    assert [t.type for t in fig.data] == ["heatmap", "heatmap"]
    np.testing.assert_array_equal(fig.data[0].z, true)
    np.testing.assert_array_equal(fig.data[1].z, learned)
    assert {t.coloraxis for t in fig.data} == {"coloraxis"}
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (-4.0, 4.0)
    titles = annotation_texts(fig)
    assert titles[0] == "true dW*" and titles[1] == "learned dW = (alpha/r) B A"
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.yaxis2.scaleanchor == "x2"
    big = F.delta_comparison_figure(np.ones((512, 512)), np.ones((512, 512)))
    assert all(max(np.asarray(t.z).shape) <= 128 for t in big.data)
    assert all("block-averaged 512×512" in t for t in annotation_texts(big)[:2])
    assert has_empty_note(F.delta_comparison_figure(np.zeros((0, 3)), np.zeros((0, 3))))


def test_matrices_figure():
    a, b = np.full((2, 6), 0.5), np.full((6, 2), -1.5)
    fig = F.matrices_figure(a, b, b @ a)
    assert names(fig) == ["A", "B", "B A"]
    titles = annotation_texts(fig)
    assert titles[0].startswith("A (2 × 6)") and "12 params" in titles[0]
    assert titles[1].startswith("B (6 × 2)") and "12 params" in titles[1]
    assert titles[2].startswith("B A (6 × 6)") and "36" in titles[2]
    assert fig.layout.coloraxis.cmin == -1.5 and fig.layout.coloraxis.cmax == 1.5
    zero = F.matrices_figure(a, np.zeros((6, 2)), np.zeros((6, 6)))  # B = 0 at initialisation
    assert zero.layout.coloraxis.cmax == 0.5
    assert has_empty_note(F.matrices_figure(np.zeros((0, 6)), b, b @ a))


# -- singular values ---------------------------------------------------------------------------
def test_singular_values_figure():
    s_true = np.array([3.0, 2.0, 1.0, 0.5])
    s_learned = np.array([2.9, 1.9, np.nan, 1e-9])
    fig = F.singular_values_figure({"true dW*": s_true, "learned dW": s_learned}, rank=2, log_y=True)
    assert names(fig) == ["true dW*", "learned dW"]
    np.testing.assert_array_equal(fig.data[0].x, [1, 2, 3, 4])
    np.testing.assert_allclose(fig.data[0].y, s_true)
    np.testing.assert_array_equal(fig.data[1].x, [1, 2, 4])  # NaN dropped, indices kept
    assert fig.data[0].line.color == F.THEORY_FLOOR and fig.data[1].line.color == F.ADAPTED_MODEL
    (vline,) = [s for s in fig.layout.shapes if s.x0 == s.x1]
    assert vline.x0 == 2 and vline.line.dash == "dash" and "rank r" in vline.label.text
    assert fig.layout.yaxis.type == "log"
    assert F.singular_values_figure({"a": s_true}).layout.yaxis.type != "log"
    assert has_empty_note(F.singular_values_figure({}))
    assert has_empty_note(F.singular_values_figure({"true dW*": []}, rank=2))


# -- prediction grid ---------------------------------------------------------------------------
def test_prediction_grid_is_one_mosaic_with_coloured_captions():
    rng = np.random.default_rng(4)
    images = rng.random((10, 8, 8))
    true = np.array([3, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    base = np.array([7, 1, 0, 3, 4, 5, 6, 7, 8, 0])
    lora = np.array([3, 1, 2, 9, 4, 5, 6, 7, 8, 9])
    names_ = [str(i) for i in range(10)]
    fig = F.prediction_grid_figure(images, true, base, lora, names_, n_cols=4)
    trace, hover = fig.data  # one mosaic, and invisible points carrying the full captions on hover
    assert trace.type == "heatmap" and trace.showscale is False
    assert hover.marker.opacity == 0 and len(hover.hovertext) == 10
    assert hover.hovertext[0] == "true: 3<br>base: 7 ✗<br>LoRA: 3 ✓"
    z = np.asarray(trace.z, dtype=float)
    rows = np.flatnonzero(~np.isnan(z).all(axis=1))  # padding and captions are NaN (transparent)
    cols = np.flatnonzero(~np.isnan(z).all(axis=0))
    assert len(rows) == 3 * 8 and len(cols) == 4 * 8  # 3 rows x 4 columns of 8x8 images
    # the first image is in the mosaic as it is (ink high = dark on the white ground)
    top, left = rows[0], cols[0]
    np.testing.assert_allclose(z[top:top + 8, left:left + 8], images[0], rtol=1e-6)
    captions = annotation_texts(fig)
    assert len(captions) == 10
    first = captions[0]  # truth 3, base 7 (wrong), LoRA 3 (right)
    assert "<b>3</b>" in first
    assert f"color:{F.WRONG}'>base 7 ✗" in first and f"color:{F.CORRECT}'>LoRA 3 ✓" in first
    fourth = captions[3]  # truth 3, base 3 (right), LoRA 9 (wrong)
    assert f"color:{F.CORRECT}'>base 3 ✓" in fourth and f"color:{F.WRONG}'>LoRA 9 ✗" in fourth
    frames = [s.line.color for s in fig.layout.shapes]
    assert frames[0] == F.CORRECT and frames[3] == F.WRONG
    assert fig.layout.xaxis.visible is False and fig.layout.yaxis.visible is False
    assert fig.layout.yaxis.scaleanchor == "x"
    assert len(fig.to_json()) < 100_000


def test_prediction_grid_ink_and_names():
    images = np.zeros((1, 4, 4))
    images[0, 0, 0] = 1.0
    fig = F.prediction_grid_figure(images, [0], [1], [0], ["T-shirt/top", "Trouser"], ink_is_high=False)
    z = np.asarray(fig.data[0].z, dtype=float)
    finite = z[~np.isnan(z)]
    assert finite.min() == 0.0 and (finite == 1.0).sum() == 15  # inverted: 1 - x
    assert "T-shirt/top" in annotation_texts(fig)[0] and "Trouser" in annotation_texts(fig)[0]


def test_prediction_grid_shortens_long_names_to_fit():
    names_ = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
              "Ankle boot"]
    images = np.zeros((8, 28, 28))
    true = np.array([9, 0, 9, 9, 9, 9, 9, 9])
    fig = F.prediction_grid_figure(images, true, [0] * 8, true, names_, n_cols=8)
    caption = annotation_texts(fig)[0]  # truth Ankle boot, base T-shirt/top (wrong), LoRA right
    assert "<b>Ankle boot</b>" in caption
    assert f"color:{F.WRONG}'>base T-sh… ✗" in caption
    assert f"color:{F.CORRECT}'>LoRA ✓" in caption  # right: no name needed
    assert fig.data[1].hovertext[0] == "true: Ankle boot<br>base: T-shirt/top ✗<br>LoRA: Ankle boot ✓"
    wide = F.prediction_grid_figure(images[:2], true[:2], [0, 0], true[:2], names_, n_cols=2)
    assert f"color:{F.CORRECT}'>LoRA Ankle boot ✓" in annotation_texts(wide)[0]  # room for full names
    u8 = F.prediction_grid_figure(np.full((1, 4, 4), 255, dtype=np.uint8), [0], [0], [0], ["a"])
    assert np.nanmax(np.asarray(u8.data[0].z, dtype=float)) == 1.0


def test_prediction_grid_empty():
    assert has_empty_note(F.prediction_grid_figure(np.zeros((0, 8, 8)), [], [], [], []))


# -- savings and memory ------------------------------------------------------------------------
def test_savings_figure():
    rows = [{"label": "LLaMA-2 7B (q,v, r=8)", "full": 6_738_415_616, "lora": 4_194_304},
            {"label": "GPT-2 small (q,v, r=8)", "full": 124_439_808, "lora": 294_912}]
    fig = F.savings_figure(rows)
    assert names(fig) == ["full fine-tuning", "LoRA"]
    full, lora = fig.data
    assert full.orientation == "h" and list(full.y) == [r["label"] for r in rows]
    np.testing.assert_array_equal(full.x, [6_738_415_616, 124_439_808])
    np.testing.assert_array_equal(lora.x, [4_194_304, 294_912])
    assert list(full.text) == ["6.74B", "124M"]
    assert lora.text[0].startswith("4.19M")
    assert full.marker.color == F.FULL_FT and lora.marker.color == F.ADAPTED_MODEL
    assert fig.layout.xaxis.type == "log" and fig.layout.barmode == "group"
    assert has_empty_note(F.savings_figure([]), "Pick a model and target modules")


def test_memory_figure_units_and_stack():
    rows = [{"label": "full fine-tuning", "weights": 13.5e9, "gradients": 13.5e9, "optimizer": 27e9},
            {"label": "LoRA", "weights": 13.5e9, "gradients": 8.4e6, "optimizer_state": 16.8e6}]
    fig = F.memory_figure(rows)
    assert names(fig) == ["weights", "gradients", "optimizer state"]
    assert fig.layout.barmode == "stack" and fig.layout.yaxis.title.text == "memory (GB)"
    np.testing.assert_allclose(fig.data[0].y, [13.5, 13.5])
    np.testing.assert_allclose(fig.data[2].y, [27.0, 0.0168])
    assert list(fig.data[0].text) == ["13.5 GB", "13.5 GB"]
    texts = annotation_texts(fig)
    assert texts[0] == "<b>54 GB</b>" and "gradients 8.4 MB" in texts[1]
    small = F.memory_figure([{"label": "LoRA", "weights": 2e6, "gradients": 1e5, "optimizer": 2e5}])
    assert small.layout.yaxis.title.text == "memory (MB)"
    np.testing.assert_allclose(small.data[0].y, [2.0])
    assert has_empty_note(F.memory_figure([]), "Pick a model and target modules")


# -- multimodal --------------------------------------------------------------------------------
def test_branch_figure():
    scores = {"both": 0.53, "text only": 0.31, "image only": 0.40, "neither (base)": 0.19}
    fig = F.branch_figure(scores)
    (bar,) = fig.data
    assert list(bar.x) == list(scores)  # the dict's order
    np.testing.assert_allclose(bar.y, [53, 31, 40, 19])
    assert list(bar.text) == ["53.0%", "31.0%", "40.0%", "19.0%"]
    assert bar.marker.color[0] == F.ADAPTED_MODEL and bar.marker.color[3] == F.BASE_MODEL
    assert fig.layout.yaxis.ticksuffix == "%"
    loss = F.branch_figure({"both": 0.8, "neither (base)": 1.2}, metric="loss")
    np.testing.assert_allclose(loss.data[0].y, [0.8, 1.2])
    assert has_empty_note(F.branch_figure({}))


def test_param_split_figure():
    rows = [{"branch": "text", "frozen": 120_000, "trainable": 3_000},
            {"branch": "image", "frozen": 400_000, "trainable": 8_000}]
    fig = F.param_split_figure(rows)
    assert names(fig) == ["frozen", "trainable"]
    frozen, trainable = fig.data
    assert fig.layout.barmode == "stack" and frozen.orientation == "h"
    np.testing.assert_array_equal(frozen.x, [120_000, 400_000])
    np.testing.assert_array_equal(trainable.x, [3_000, 8_000])
    assert frozen.marker.color == F.FROZEN and trainable.marker.color == F.ADAPTED_MODEL
    assert list(frozen.text) == ["120K", "400K"] and trainable.text[0] == "3,000 trainable"
    assert fig.layout.xaxis.type != "log"
    assert has_empty_note(F.param_split_figure([]))


# -- all builders ------------------------------------------------------------------------------
def test_every_builder_serialises_and_uses_the_house_style():
    figs = [
        F.loss_figure([0, 1], [1.0, 0.5]), F.metric_figure([0], [0.5]),
        F.compare_figure([{"label": "r=1", "steps": [0, 1], "loss": [1, 0.5]}]),
        F.params_vs_loss_figure([{"label": "r=1", "params": 10, "loss": 1.0}]),
        F.heatmap_figure(np.eye(3), title="I"), F.delta_comparison_figure(np.eye(3), np.eye(3)),
        F.singular_values_figure({"s": [2.0, 1.0]}, rank=1),
        F.prediction_grid_figure(np.zeros((2, 4, 4)), [0, 1], [0, 0], [0, 1], ["a", "b"]),
        F.savings_figure([{"label": "m", "full": 100, "lora": 10}]),
        F.memory_figure([{"label": "LoRA", "weights": 10, "gradients": 1, "optimizer": 2}]),
        F.branch_figure({"both": 0.5}), F.param_split_figure([{"branch": "t", "frozen": 5, "trainable": 1}]),
        F.matrices_figure(np.ones((1, 3)), np.ones((3, 1)), np.ones((3, 3))),
    ]
    for fig in figs:
        assert isinstance(fig, go.Figure)
        json.loads(fig.to_json())
        assert fig.layout.font.size == 15 and fig.layout.height >= 200
        assert fig.layout.title.text
        assert fig.layout.template.layout.plot_bgcolor == "white"  # plotly_white


def test_figures_module_imports_neither_streamlit_nor_lora_core():
    code = ("import sys; import lab_ui.figures; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('streamlit', 'lora_core')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
