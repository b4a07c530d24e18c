"""The command line: `main([...])` in-process (fast), plus one real `python -m lora_core` subprocess."""
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from lora_core.cli import Progress, fmt_bytes, fmt_count, fmt_percent, fmt_times, json_safe, main

ROOT = Path(__file__).resolve().parent.parent
TRAIN_KEYS = {"modality", "preset", "method", "rank", "train_loss", "val_loss", "val_accuracy", "val_bpc",
              "theory_floor", "theory_floor_train", "base_val_loss", "base_val_accuracy", "trainable_params",
              "total_params", "percent_trainable", "steps", "diverged", "message", "seconds", "steps_per_second"}
ROW_KEYS = {"rank", "method", "trainable_params", "percent_trainable", "final_train_loss", "final_val_loss",
            "val_accuracy", "val_bpc", "theory_floor", "seconds", "error"}


def _no_nan(constant):
    raise AssertionError(f"{constant} in the JSON output")


def last_json(text: str) -> dict:
    """The last stdout line as JSON, refusing NaN / Infinity."""
    return json.loads(text.strip().splitlines()[-1], parse_constant=_no_nan)


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv) -> dict:
    code, out, err = run_cli(capsys, *argv, "--json")
    assert code == 0, err
    return last_json(out)


# -- train ------------------------------------------------------------------------------

@pytest.mark.parametrize("modality, metric", [("synthetic", None), ("image", "val_accuracy"),
                                              ("text", "val_bpc"), ("multimodal", "val_accuracy")])
def test_train_every_modality(capsys, modality, metric):
    r = run_json(capsys, "train", "--modality", modality, "--steps", "30")
    assert TRAIN_KEYS <= set(r)
    assert r["modality"] == modality and r["method"] == "lora" and r["steps"] == 30 and not r["diverged"]
    assert math.isfinite(r["train_loss"]) and math.isfinite(r["val_loss"]) and math.isfinite(r["base_val_loss"])
    assert 0 < r["trainable_params"] < r["total_params"]
    for key in ("val_accuracy", "val_bpc"):
        assert (r[key] is not None) == (key == metric)
    assert (r["base_val_accuracy"] is not None) == (metric == "val_accuracy")
    assert (r["theory_floor"] is not None) == (modality == "synthetic")


def test_seed_preset_reaches_the_theory_floor(capsys):
    r = run_json(capsys, "train", "--preset", "seed")
    assert r["preset"] == "seed" and r["modality"] == "multimodal" and r["rank"] == 1 and r["steps"] == 500
    assert 0.19 <= r["train_loss"] <= 0.28
    assert r["theory_floor"] == pytest.approx(0.25, abs=1e-3)
    assert r["theory_floor_train"] < r["theory_floor"]
    assert r["val_accuracy"] is None and r["val_bpc"] is None


def test_train_flags_and_set_reach_the_config(capsys):
    r = run_json(capsys, "train", "--modality", "synthetic", "--rank", "2", "--alpha", "4", "--optimizer", "sgd",
                 "--lr", "0.05", "--steps", "20", "--batch-size", "32", "--seed", "3",
                 "--set", "syn_d_in=32", "--set", "use_rslora=true", "--set", "rank=7")
    c = r["config"]
    assert (c["rank"], c["alpha"], c["optimizer"], c["lr"], c["steps"], c["batch_size"], c["seed"]) == \
        (2, 4.0, "sgd", 0.05, 20, 32, 3)  # explicit --rank wins over --set rank=7
    assert c["syn_d_in"] == 32 and c["use_rslora"] is True
    assert r["trainable_params"] == 2 * (32 + 64)


def test_train_full_method_has_no_rank(capsys):
    r = run_json(capsys, "train", "--modality", "synthetic", "--method", "full", "--steps", "20")
    assert r["method"] == "full" and r["rank"] is None and r["percent_of_full"] == 100.0


def test_train_human_table(capsys):
    code, out, err = run_cli(capsys, "train", "--modality", "synthetic", "--steps", "40")
    assert code == 0
    for words in ("before (frozen base)", "after", "trainable params", "final train loss", "final val loss",
                  "theory floor", "steps/s", "done (40/40 steps)"):
        assert words in out
    assert "40/40" in err.splitlines()[-1]  # progress: the final line is printed even off a terminal


def test_diverged_run_exits_3_with_the_reason(capsys):
    code, out, err = run_cli(capsys, "train", "--modality", "synthetic", "--optimizer", "sgd", "--lr", "10",
                             "--steps", "50", "--json")
    assert code == 3
    r = last_json(out)
    assert r["diverged"] is True and "diverged" in r["message"] and r["steps"] < 50
    assert "diverged" in err
    code, out, _ = run_cli(capsys, "train", "--modality", "synthetic", "--optimizer", "sgd", "--lr", "10")
    assert code == 3 and "smaller learning rate" in out


# -- compare ----------------------------------------------------------------------------

def test_compare_one_row_per_rank_plus_full(capsys):
    r = run_json(capsys, "compare", "--modality", "synthetic", "--ranks", "1,2,4,8", "--full", "--steps", "60")
    assert r["modality"] == "synthetic"
    rows = r["runs"]
    assert [(row["method"], row["rank"]) for row in rows] == [("lora", 1), ("lora", 2), ("lora", 4), ("lora", 8),
                                                              ("full", None)]
    for row in rows:
        assert ROW_KEYS <= set(row) and row["error"] is None
    params = [row["trainable_params"] for row in rows]
    assert params == sorted(params) and params[:4] == [128, 256, 512, 1024]
    floors = [row["theory_floor"] for row in rows[:4]]
    assert floors == sorted(floors, reverse=True)  # a larger rank can fit more of dW*


def test_compare_skips_a_rank_the_task_cannot_take(capsys):
    r = run_json(capsys, "compare", "--modality", "synthetic", "--ranks", "2,16", "--head", "--steps", "20",
                 "--set", "syn_d_in=8", "--set", "syn_d_out=8", "--set", "syn_true_rank=2")
    ok, too_big, head = r["runs"]
    assert ok["error"] is None and head["method"] == "head" and head["error"] is None
    assert too_big["rank"] == 16 and too_big["trainable_params"] is None and "rank" in too_big["error"]


def test_compare_human_table(capsys):
    code, out, _ = run_cli(capsys, "compare", "--modality", "image", "--ranks", "1,2,200", "--full", "--steps", "20")
    assert code == 0
    assert "val accuracy" in out and "% of full" in out
    for name in ("r=1", "r=2", "r=200", "full"):
        assert name in out
    assert "note: r=200: rank=200 is too large" in out


# -- savings and presets ------------------------------------------------------------------

def test_savings_gpt3_matches_the_lora_paper(capsys):
    r = run_json(capsys, "savings", "--model", "gpt3-175b", "--targets", "q,v", "--rank", "8")
    assert r["model"] == "gpt3-175b" and r["targets"] == ["q", "v"] and r["rank"] == 8
    assert r["lora_params"] == 37_748_736 and r["total_params"] == 175_000_000_000
    assert r["percent"] == pytest.approx(0.02157, abs=1e-5)
    assert r["adapter_bytes_fp16"] == 2 * 37_748_736
    code, out, _ = run_cli(capsys, "savings", "--model", "gpt3-175b", "--targets", "q,v", "--rank", "8")
    assert code == 0 and "37.7M" in out and "0.0216%" in out and "4,636x" in out and "75.5 MB" in out


def test_presets_lists_every_preset(capsys):
    from lora_core.config import PRESETS
    code, out, _ = run_cli(capsys, "presets")
    assert code == 0
    for name, values in PRESETS.items():
        line = next(line for line in out.splitlines() if line.split()[0] == name)
        assert values["modality"] in line
    r = run_json(capsys, "presets")
    assert [p["name"] for p in r["presets"]] == list(PRESETS)


# -- mistakes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, field", [
    (["train", "--modality", "synthetic", "--rank", "0"], "rank"),
    (["train", "--modality", "synthetic", "--set", "no_such_field=1"], "no_such_field"),
    (["train", "--modality", "synthetic", "--set", "syn_d_in=abc"], "syn_d_in"),
    (["train", "--modality", "synthetic", "--set", "syn_d_in"], "--set"),
    (["train", "--preset", "seed", "--modality", "text"], "modality"),
    (["train"], "modality"),
    (["train", "--modality", "image", "--rank", "100"], "rank"),
    (["train", "--modality", "synthetic", "--out", "/no/such/folder/run.zip"], "out"),
    (["compare", "--modality", "synthetic", "--ranks", "one,two"], "ranks"),
    (["savings", "--model", "gpt3-175b", "--targets", "q,x"], "targets"),
    (["savings", "--model", "gpt2-small", "--rank", "0"], "rank"),
    (["inspect", "no-such-run.zip"], "no-such-run.zip"),
])
def test_mistakes_exit_2_naming_the_field(capsys, argv, field):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert err.startswith("error: ") and field in err and "Traceback" not in err
    assert out == ""


def test_argparse_usage_errors_exit_2(capsys):
    assert run_cli(capsys, "train", "--modality", "audio")[0] == 2
    assert run_cli(capsys, "train", "--rank", "x")[0] == 2
    assert run_cli(capsys)[0] == 2
    assert run_cli(capsys, "--help")[0] == 0


def test_inspect_refuses_a_file_that_is_not_a_bundle(capsys, tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"this is not a zip file")
    code, _, err = run_cli(capsys, "inspect", str(bad))
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err


# -- checkpoints --------------------------------------------------------------------------------

def test_out_then_inspect_round_trip(capsys, tmp_path):
    path = tmp_path / "run.zip"
    r = run_json(capsys, "train", "--modality", "synthetic", "--rank", "2", "--steps", "30", "--out", str(path))
    assert r["out"] == str(path) and path.stat().st_size > 0
    info = run_json(capsys, "inspect", str(path))
    assert info["config"]["rank"] == 2 and info["config"]["modality"] == "synthetic"
    assert info["step_count"] == 30 and info["status"] == "done"
    assert info["final_train_loss"] == pytest.approx(r["train_loss"])
    assert info["final_val_loss"] == pytest.approx(r["val_loss"])
    [layer] = info["layers"]
    assert layer["path"] == "fc1" and layer["A_shape"] == [2, 64] and layer["B_shape"] == [64, 2]
    assert len(layer["singular_values"]) == 2
    code, out, _ = run_cli(capsys, "inspect", str(path))
    assert code == 0 and "synthetic" in out and "30 of 30 (done)" in out and "2x64" in out and "64x2" in out


def test_inspect_a_peft_adapter_zip(capsys, tmp_path):
    from lora_core.checkpoint import adapter_zip, load_bundle
    bundle = tmp_path / "run.zip"
    assert run_cli(capsys, "train", "--preset", "seed", "--steps", "20", "--out", str(bundle))[0] == 0
    adapter = tmp_path / "adapter.zip"
    adapter.write_bytes(adapter_zip(load_bundle(bundle)))
    info = run_json(capsys, "inspect", str(adapter))
    assert info["format"] == "peft-lora" and info["rank"] == 1
    assert sorted(layer["path"] for layer in info["layers"]) == ["image.proj", "text.proj"]
    code, out, _ = run_cli(capsys, "inspect", str(adapter))
    assert code == 0 and "PEFT LoRA adapter: rank 1" in out and "text.proj" in out


# -- helpers ----------------------------------------------------------------------------------------

def test_number_formats():
    assert fmt_count(512) == "512" and fmt_count(37_748_736) == "37.7M" and fmt_count(6_738_415_616) == "6.74B"
    assert fmt_bytes(75_497_472) == "75.5 MB" and fmt_bytes(350e9) == "350 GB" and fmt_bytes(12) == "12 B"
    assert fmt_percent(0.021570706) == "0.0216%" and fmt_percent(float("nan")) == "n/a"
    assert fmt_times(4636.4) == "4,636x" and fmt_times(1.0) == "1x" and fmt_times(math.inf) == "n/a"
    assert json_safe({"a": float("nan"), "b": (1, float("inf"))}) == {"a": None, "b": [1, None]}


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_redraws_in_place_on_a_terminal_only():
    live, piped = _Terminal(), io.StringIO()
    for stream in (live, piped):
        bar = Progress(100, "synthetic r=4", stream=stream, interval=0.1)
        for step in range(1, 101):
            bar.update(step, 0.5)  # far faster than 10 per second: drawn once
        bar.close(100, 0.25, "done")
    assert live.getvalue().count("\r") == 2 and "ETA" in live.getvalue() and live.getvalue().endswith("\n")
    assert piped.getvalue().count("\n") == 1 and "\r" not in piped.getvalue()
    assert "100/100  loss 0.25" in piped.getvalue() and piped.getvalue().rstrip().endswith("done")


# -- the real entry point ---------------------------------------------------------------------------

def test_python_dash_m_lora_core():
    done = subprocess.run([sys.executable, "-m", "lora_core", "train", "--modality", "synthetic", "--steps", "50",
                           "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    r = last_json(done.stdout)
    assert TRAIN_KEYS <= set(r) and r["steps"] == 50 and r["modality"] == "synthetic"
    assert "Traceback" not in done.stderr
