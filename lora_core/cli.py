"""`python -m lora_core`: train, compare ranks, count savings and inspect checkpoints from a terminal.

    python -m lora_core train --modality synthetic --rank 4 --steps 500
    python -m lora_core train --preset seed --json
    python -m lora_core compare --modality image --ranks 1,2,4,8 --full
    python -m lora_core savings --model gpt3-175b --targets q,v --rank 8
    python -m lora_core inspect run.zip
    python -m lora_core presets

Every command prints a short table; with `--json` the last line of stdout is one
JSON object instead (never NaN: missing numbers are null). Progress goes to
stderr. Exit codes: 0 done, 2 a usage mistake (the message names the setting),
3 a training run that diverged.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .accounting import ARCHITECTURES, TARGETS, savings, summary
from .config import DEFAULT_PRESET, MODALITIES, OPTIMIZERS, PRESETS, Config
from .errors import CheckpointError, ConfigError
from .models import METHODS
from .tasks import Task, build_task
from .trainer import Run

EXIT_OK, EXIT_USAGE, EXIT_DIVERGED = 0, 2, 3
CHUNK_SECONDS = 0.1  # train in chunks this long, redrawing the progress bar between them
# Command-line flags that set a Config field of the same name (argparse dest -> field).
FLAG_FIELDS = ("rank", "alpha", "optimizer", "lr", "steps", "batch_size", "seed", "method")


# -- number formatting ------------------------------------------------------------

def _finite(x) -> bool:
    return x is not None and math.isfinite(x)


def fmt_num(x, digits: int = 4) -> str:
    """A loss or rate to `digits` significant digits; "n/a" for None, NaN or inf."""
    return f"{x:.{digits}g}" if _finite(x) else "n/a"


def fmt_percent(p) -> str:
    return f"{p:.3g}%" if _finite(p) else "n/a"


def fmt_times(x) -> str:
    """A reduction factor: 4,636x, 16x, 1.3x."""
    if not _finite(x):
        return "n/a"
    return f"{x:,.0f}x" if x >= 10 else f"{x:.2g}x"


def _scaled(n, units) -> str:
    for suffix, size in units:
        if abs(n) >= size:
            return f"{n / size:.3g}{suffix}"
    return f"{n:,}"


def fmt_count(n) -> str:
    """A parameter count: 8,704 / 37.7M / 6.74B."""
    return _scaled(int(n), (("B", 1e9), ("M", 1e6))) if n is not None else "n/a"


def fmt_bytes(n) -> str:
    """A size in decimal units: 75.5 MB, 350 GB, 1.4 TB."""
    return _scaled(int(n), ((" TB", 1e12), (" GB", 1e9), (" MB", 1e6), (" kB", 1e3))) + ("" if n >= 1e3 else " B")


def fmt_seconds(s) -> str:
    """A duration: 0.03s, 4.20s, 42s, 3m05s."""
    if not _finite(s):
        return "n/a"
    if s < 60:
        return f"{s:.2f}s" if s < 10 else f"{s:.0f}s"
    return f"{int(s // 60)}m{int(s % 60):02d}s"


def fmt_rate(x) -> str:
    """Steps per second: 9,350."""
    return f"{x:,.0f}" if _finite(x) else "n/a"


def fmt_scores(scores: dict, prefix: str = "") -> str:
    """Validation scores from keys `{prefix}val_loss` etc: "loss 0.312, accuracy 91.4%" or "loss 2.12, 3.06 bpc"."""
    scores = {key: scores.get(f"{prefix}val_{key}") for key in ("loss", "accuracy", "bpc")}
    text = f"loss {fmt_num(scores['loss'])}"
    if _finite(scores["accuracy"]):
        text += f", accuracy {fmt_percent(100 * scores['accuracy'])}"
    if _finite(scores["bpc"]):
        text += f", {fmt_num(scores['bpc'], 3)} bpc"
    return text


def print_pairs(title: str, pairs: list[tuple[str, str]]) -> None:
    """A two-column table under a title line."""
    print(title)
    width = max(len(key) for key, _ in pairs)
    for key, value in pairs:
        print(f"  {key:<{width}}  {value}")


def print_grid(headers: list[str], rows: list[list[str]]) -> None:
    """A table with a header row; each column as wide as its widest cell."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    for line in (headers, ["-" * w for w in widths], *rows):
        print("  ".join(f"{cell:<{w}}" for cell, w in zip(line, widths)).rstrip())


def json_safe(value):
    """Plain JSON types: NumPy numbers to Python, tuples to lists, NaN and inf to None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def print_json(obj) -> None:
    print(json.dumps(json_safe(obj), allow_nan=False))


# -- progress ----------------------------------------------------------------------

class Progress:
    """One line on stderr: redrawn in place (at most 10x/s) on a terminal; elsewhere only the final line."""

    WIDTH = 20

    def __init__(self, total: int, label: str, stream=None, interval: float = 0.1):
        self.total, self.label, self.interval = total, label, interval
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.drawn = -math.inf

    def _line(self, step: int, loss: float, status: str | None = None) -> str:
        elapsed = time.perf_counter() - self.start
        rate = step / elapsed if elapsed > 0 else math.nan
        filled = round(self.WIDTH * step / self.total) if self.total else self.WIDTH
        bar = "#" * filled + "." * (self.WIDTH - filled)
        when = f"in {fmt_seconds(elapsed)}  {status}" if status else f"ETA {fmt_seconds((self.total - step) / rate)}"
        return f"{self.label} [{bar}] {step}/{self.total}  loss {fmt_num(loss)}  {fmt_rate(rate)} steps/s  {when}"

    def update(self, step: int, loss: float) -> None:
        now = time.perf_counter()
        if self.live and now - self.drawn >= self.interval:
            self.stream.write("\r" + self._line(step, loss) + "\033[K")
            self.stream.flush()
            self.drawn = now

    def close(self, step: int, loss: float, status: str) -> None:
        """The final line, on a terminal or not."""
        prefix, suffix = ("\r", "\033[K\n") if self.live else ("", "\n")
        self.stream.write(prefix + self._line(step, loss, status) + suffix)
        self.stream.flush()


def train(run: Run, label: str) -> Run:
    """Train `run` to the end (or to divergence) in short chunks, with a progress bar."""
    bar = Progress(run.config.steps, label)
    while not run.done:
        run.step(run.config.steps, seconds=CHUNK_SECONDS)
        bar.update(run.step_count, run.history.last("train_loss"))
    bar.close(run.step_count, run.history.last("train_loss"), run.status)
    return run


# -- configs -------------------------------------------------------------------------

def parse_sets(items: list[str]) -> dict[str, str]:
    """--set KEY=VALUE pairs as a dict of strings (Config.from_dict converts and checks them)."""
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE (e.g. --set syn_d_in=32), got {item!r}.")
        values[key.strip()] = value.strip()
    return values


def build_config(args) -> tuple[Config, str]:
    """The preset (or the modality's default preset), then --set values, then explicit flags."""
    if args.preset is None and args.modality is None:
        raise ConfigError(f"modality is missing: give --modality (one of {', '.join(MODALITIES)}) or --preset.")
    preset = args.preset or DEFAULT_PRESET[args.modality]
    preset_modality = PRESETS[preset]["modality"]
    if args.modality is not None and args.modality != preset_modality:
        same = [name for name, values in PRESETS.items() if values["modality"] == args.modality]
        raise ConfigError(f"preset={preset!r} is a {preset_modality} preset but modality={args.modality!r} was "
                          f"given: drop --modality, or pick a {args.modality} preset ({', '.join(same)}).")
    values = {**PRESETS[preset], **parse_sets(args.set)}
    values.update({name: getattr(args, name) for name in FLAG_FIELDS if getattr(args, name, None) is not None})
    return Config.from_dict(values), preset


def describe(c: Config) -> str:
    """One line from a config's values: the data and base, then how it trains."""
    if c.modality == "synthetic":
        data = (f"learn a rank-{c.syn_true_rank} dW* on a {c.syn_d_out}x{c.syn_d_in} {c.syn_base} base "
                f"(noise {c.syn_noise:g}, {c.syn_samples} samples)")
    elif c.modality == "image":
        shift = {"rotate": f"rotated {c.img_angle:g} degrees", "mirror": "mirrored",
                 "fashion": "Fashion-MNIST clothes"}[c.img_shift]
        data = f"MLP (hidden {c.img_hidden}) on {c.img_dataset} -> {shift}"
    elif c.modality == "text":
        data = f"char model (context {c.txt_context}, hidden {c.txt_hidden}) on prose -> Shakespeare"
    elif c.is_toy:
        data = "the original toy: 4 text + 4 image random features, no base"
    else:
        data = f"emoji picture + name, {c.mm_fusion} fusion (hidden {c.mm_hidden}), shift: {c.mm_shift}"
    how = f"r={c.rank} alpha={c.alpha:g}" if c.method == "lora" else c.method
    return f"{data}; {how}, {c.optimizer} lr={c.lr:g}, {c.steps} steps x batch {c.batch_size}"


# -- run results -----------------------------------------------------------------------

def outcome(run: Run) -> dict:
    """What a finished run reports: parameter counts, last losses and scores, theory floor, speed.

    The validation numbers are the run's last evaluation (the end of the curve; for a diverged
    run, the last one before it blew up).
    """
    counts = summary(run.model, run.config.optimizer)
    metric = run.history.last("val_metric")
    floor = run.theory_floor() or {}
    return {
        "method": run.config.method,
        "rank": run.config.rank if run.config.method == "lora" else None,
        "trainable_params": counts.trainable_params,
        "total_params": counts.total_params,
        "percent_trainable": counts.percent_trainable,
        "percent_of_full": 100.0 * counts.trainable_params / counts.full_finetune_params,
        "reduction": counts.reduction,
        "train_loss": run.history.last("train_loss"),
        "val_loss": run.history.last("val_loss"),
        "val_accuracy": metric if run.task.metric == "accuracy" else None,
        "val_bpc": metric if run.task.metric == "bpc" else None,
        "theory_floor": floor.get("population"),
        "theory_floor_train": floor.get("train_optimum"),
        "theory_floor_noise": floor.get("noise"),
        "steps": run.step_count,
        "status": run.status,
        "diverged": run.status == "diverged",
        "message": run.message,
        "seconds": run.train_time,
        "steps_per_second": run.step_count / run.train_time if run.train_time > 0 else None,
    }


def base_fields(task: Task) -> dict:
    scores = task.base_scores()
    return {"base_val_loss": scores["loss"], "base_val_accuracy": scores.get("accuracy"),
            "base_val_bpc": scores.get("bpc")}


def variant(method: str, rank: int | None) -> str:
    """A run's short name: "r=4", "full", "head"."""
    return f"r={rank}" if method == "lora" else method


def heading(task: Task, preset: str, config: Config) -> str:
    return f"{task.description}\npreset {preset}: {describe(config)}"


# -- commands ----------------------------------------------------------------------------

def cmd_train(args) -> int:
    config, preset = build_config(args)
    out = Path(args.out) if args.out else None
    if out is not None:
        if not out.parent.is_dir():
            raise ConfigError(f"out={args.out!r} is not allowed: the folder {str(out.parent)!r} does not exist.")
        from .checkpoint import save_bundle  # lazily (only --out needs it), but before training
    run = Run(config)
    base = base_fields(run.task)
    train(run, f"{config.modality} {variant(config.method, config.rank)}")
    result = {"modality": config.modality, "preset": preset, **outcome(run), **base,
              "steps_planned": config.steps, "out": str(out) if out else None, "config": config.to_dict()}
    if out is not None:
        out.write_bytes(save_bundle(run))
    if args.json:
        print_json(result)
        if result["diverged"]:
            print(run.message, file=sys.stderr)
    else:
        print_train(result, run.task)
    return EXIT_DIVERGED if result["diverged"] else EXIT_OK


def print_train(r: dict, task: Task) -> None:
    pairs = [
        ("before (frozen base)", fmt_scores(r, "base_")),
        ("after", fmt_scores(r)),
        ("trainable params", f"{r['trainable_params']:,} of {r['total_params']:,} "
                             f"({fmt_percent(r['percent_trainable'])}, {fmt_times(r['reduction'])} fewer than full)"),
        ("final train loss", fmt_num(r["train_loss"])),
        ("final val loss", fmt_num(r["val_loss"])),
    ]
    if r["theory_floor"] is not None:
        pairs.append(("theory floor", f"{fmt_num(r['theory_floor'])} population, {fmt_num(r['theory_floor_train'])} "
                                      f"train optimum (noise {fmt_num(r['theory_floor_noise'])})"))
    pairs += [
        ("time", f"{fmt_seconds(r['seconds'])}, {fmt_rate(r['steps_per_second'])} steps/s"),
        ("status", f"{r['status']} ({r['steps']}/{r['steps_planned']} steps)"),
    ]
    if r["out"]:
        pairs.append(("saved", r["out"]))
    print_pairs(heading(task, r["preset"], Config.from_dict(r["config"])), pairs)
    if r["message"]:
        print(r["message"])


def parse_ranks(text: str) -> list[int]:
    try:
        ranks = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        ranks = []
    if not ranks:
        raise ConfigError(f"ranks={text!r} is not allowed: ranks must be whole numbers separated by commas, "
                          f"e.g. 1,2,4,8.")
    return ranks


COMPARE_ROW = ("rank", "method", "trainable_params", "percent_trainable", "percent_of_full", "final_train_loss",
               "final_val_loss", "val_accuracy", "val_bpc", "theory_floor", "seconds", "status", "message", "error")


def compare_row(config: Config, task: Task, method: str, rank: int | None) -> dict:
    """Train one variant on the shared task; a setting the task cannot take becomes the row's error."""
    row = dict.fromkeys(COMPARE_ROW)
    row.update(method=method, rank=rank)
    try:
        run = Run(config.replace(method=method, **({"rank": rank} if rank is not None else {})), task)
    except ConfigError as error:
        row.update(status="skipped", error=str(error))
        return row
    result = outcome(train(run, f"{config.modality} {variant(method, rank)}"))
    result["final_train_loss"], result["final_val_loss"] = result["train_loss"], result["val_loss"]
    row.update({key: result[key] for key in COMPARE_ROW if key in result})
    return row


def cmd_compare(args) -> int:
    config, preset = build_config(args)
    ranks = parse_ranks(args.ranks)
    task = build_task(config)
    variants = [("lora", r) for r in ranks] + [("full", None)] * args.full + [("head", None)] * args.head
    rows = [compare_row(config, task, method, rank) for method, rank in variants]
    result = {"modality": config.modality, "preset": preset, "steps": config.steps, "seed": config.seed,
              "description": task.description, **base_fields(task), "runs": rows}
    if args.json:
        print_json(result)
    else:
        print_compare(result, task, config)
    return EXIT_OK


def print_compare(result: dict, task: Task, config: Config) -> None:
    print(heading(task, result["preset"], config))
    print(f"before (frozen base): {fmt_scores(result, 'base_')}\n")
    metric = {"accuracy": "val accuracy", "bpc": "val bpc"}.get(task.metric)
    headers = ["run", "trainable", "% of full", "train loss", "val loss"] + [metric] * bool(metric)
    headers += ["theory floor"] * (task.floor is not None) + ["seconds"]
    rows, notes = [], []
    for row in result["runs"]:
        name = variant(row["method"], row["rank"])
        if row["error"]:
            rows.append([name, "skipped"] + [""] * (len(headers) - 2))
            notes.append(f"{name}: {row['error']}")
            continue
        cells = [name, f"{row['trainable_params']:,}", fmt_percent(row["percent_of_full"]),
                 fmt_num(row["final_train_loss"]), fmt_num(row["final_val_loss"])]
        if metric:
            cells.append(fmt_percent(100 * row["val_accuracy"]) if task.metric == "accuracy"
                         else fmt_num(row["val_bpc"], 3))
        if task.floor is not None:
            cells.append(fmt_num(row["theory_floor"]))
        rows.append(cells + [fmt_seconds(row["seconds"])])
        if row["message"]:
            notes.append(f"{name}: {row['message']}")
    print_grid(headers, rows)
    for note in notes:
        print(f"note: {note}")


def cmd_savings(args) -> int:
    s = savings(args.model, args.targets, args.rank, optimizer=args.optimizer)
    result = {"model": s.arch, **asdict(s)}
    if args.json:
        print_json(result)
        return EXIT_OK
    pairs = [
        ("LoRA trainable params", f"{fmt_count(s.lora_params)} ({s.lora_params:,})"),
        ("model params", f"{fmt_count(s.total_params)} ({s.total_params:,})"),
        ("share of the model", fmt_percent(s.percent)),
        ("fewer than full fine-tuning", fmt_times(s.reduction)),
        ("targeted weights", f"{fmt_count(s.target_params)} (the adapter is "
                             f"{fmt_percent(100 * s.lora_trainable_target_fraction)} of them)"),
        ("adapter file", f"{fmt_bytes(s.adapter_bytes_fp16)} fp16, {fmt_bytes(s.adapter_bytes_fp32)} fp32"),
        ("model weights (both)", fmt_bytes(s.model_bytes)),
        ("gradients", f"{fmt_bytes(s.lora_gradient_bytes)} LoRA vs {fmt_bytes(s.full_ft_gradient_bytes)} full"),
        (f"{s.optimizer} state", f"{fmt_bytes(s.lora_optimizer_bytes)} LoRA vs "
                                 f"{fmt_bytes(s.full_ft_optimizer_bytes)} full"),
    ]
    print_pairs(f"{ARCHITECTURES[s.arch].label}: LoRA rank {s.rank} on {','.join(s.targets)}", pairs)
    return EXIT_OK


def cmd_inspect(args) -> int:
    data = Path(args.bundle).read_bytes()
    from .checkpoint import inspect_bundle  # lazily: only this command needs it
    try:
        info = inspect_bundle(data)
    except CheckpointError as error:
        raise CheckpointError(f"{args.bundle}: {error}") from None
    if args.json:
        print_json(info)
    else:
        print_inspect(info)
    return EXIT_OK


def print_inspect(info: dict) -> None:
    """A LoRA Lab run bundle (config, progress, losses) or a bare PEFT adapter, then its layers."""
    if info["format"] == "peft-lora":
        title = f"PEFT LoRA adapter: rank {info['rank']}, alpha {info['alpha']:g} (scale {info['scale']:g})"
        print_pairs(title, [("targets", ", ".join(layer["path"] for layer in info["layers"]))])
    else:
        c = Config.from_dict(info["config"])
        metric = "bpc" if c.modality == "text" else None if c.modality == "synthetic" or c.is_toy else "accuracy"
        last = {"val_loss": info["final_val_loss"], **({f"val_{metric}": info["final_val_metric"]} if metric else {})}
        tensors = info["tensors"]
        pairs = [
            ("config", f"{c.modality}, {describe(c)}"),
            ("step", f"{info['step_count']} of {c.steps} ({info['status']})"),
            ("final train loss", fmt_num(info["final_train_loss"])),
            ("final validation", fmt_scores(last)),
            ("tensors", ", ".join(f"{name} {t['count']} ({fmt_bytes(t['bytes'])})" for name, t in tensors.items())),
        ]
        print_pairs(f"{info['format']} v{info['format_version']}", pairs)
        if info["message"]:
            print(info["message"])
    print()
    print_grid(["layer", "A (r x in)", "B (out x r)", "top singular values of dW"],
               [[layer["path"], "x".join(map(str, layer["A_shape"])), "x".join(map(str, layer["B_shape"])),
                 ", ".join(fmt_num(v, 3) for v in layer["singular_values"][:4])
                 + (", ..." if len(layer["singular_values"]) > 4 else "")] for layer in info["layers"]])


def cmd_presets(args) -> int:
    rows = [{"name": name, "modality": values["modality"], "default": DEFAULT_PRESET[values["modality"]] == name,
             "description": describe(Config.from_dict(values))} for name, values in PRESETS.items()]
    if args.json:
        print_json({"presets": rows})
        return EXIT_OK
    print_grid(["preset", "modality", "description"],
               [[row["name"] + " *" * row["default"], row["modality"], row["description"]] for row in rows])
    print("* the preset a modality starts from when no --preset is given")
    return EXIT_OK


# -- parser and entry point -------------------------------------------------------------------

def _json_flag() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    return p


def _config_flags() -> argparse.ArgumentParser:
    """Flags shared by train and compare: where the config starts and the common knobs."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--modality", choices=MODALITIES, help="start from this modality's default preset")
    p.add_argument("--preset", choices=list(PRESETS), metavar="NAME",
                   help=f"start from a named preset: {', '.join(PRESETS)} (see `presets`)")
    p.add_argument("--alpha", type=float, help="LoRA alpha (scale = alpha / rank)")
    p.add_argument("--optimizer", choices=OPTIMIZERS)
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--steps", type=int, help="training steps")
    p.add_argument("--batch-size", type=int, dest="batch_size")
    p.add_argument("--seed", type=int)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other config field, e.g. --set syn_d_in=32 --set use_rslora=true (repeatable); "
                        "explicit flags win over --set")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lora_core", description="LoRA Lab from the command line.",
                                     epilog="Exit codes: 0 ok, 2 usage or setting error, 3 training diverged.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    json_flag = _json_flag()
    shared = [_config_flags(), json_flag]

    p = commands.add_parser("train", parents=shared, help="train one run and report before/after")
    p.add_argument("--rank", type=int, help="LoRA rank r")
    p.add_argument("--method", choices=METHODS, help="lora (default), full fine-tuning, or head only")
    p.add_argument("--out", metavar="RUN.zip", help="save the trained run as a checkpoint bundle")
    p.set_defaults(handler=cmd_train)

    p = commands.add_parser("compare", parents=shared, help="the same data and seed at several ranks")
    p.add_argument("--ranks", default="1,2,4,8", help="comma-separated ranks (default 1,2,4,8)")
    p.add_argument("--full", action="store_true", help="add a full fine-tuning row")
    p.add_argument("--head", action="store_true", help="add a head-only row")
    p.set_defaults(handler=cmd_compare)

    p = commands.add_parser("savings", parents=[json_flag], help="LoRA vs full fine-tuning on a real architecture")
    p.add_argument("--model", required=True, choices=list(ARCHITECTURES))
    p.add_argument("--targets", default="q,v", help=f"comma-separated, from {','.join(TARGETS)} (default q,v)")
    p.add_argument("--rank", type=int, default=8, help="LoRA rank (default 8)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="for the optimizer-state memory")
    p.set_defaults(handler=cmd_savings)

    p = commands.add_parser("inspect", parents=[json_flag], help="summarise a checkpoint bundle")
    p.add_argument("bundle", metavar="RUN.zip")
    p.set_defaults(handler=cmd_inspect)

    p = commands.add_parser("presets", parents=[json_flag], help="list the named presets")
    p.set_defaults(handler=cmd_presets)
    return parser


def error_message(error: Exception) -> str:
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.strerror or error}: {error.filename}"
    return str(error)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error (2): return the code instead of exiting
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    try:
        return args.handler(args)
    except (ConfigError, CheckpointError, OSError) as error:
        print(f"error: {error_message(error)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
