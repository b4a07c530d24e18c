"""The Checkpoints page's logic, without Streamlit: what an upload is, file names, tables, adapters on a model.

Everything here is a pure function of its arguments (plus `lora_core`), tested in
`tests/test_app_checkpoints.py`. Every problem with an upload is a `CheckpointError` whose message is
one sentence a person can act on; the page shows it as it is.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Callable

from lora_core import CheckpointError, Config, ConfigError, Run
from lora_core import checkpoint as ck
from lora_core.layers import GELU, Embedding, Flatten, Linear, LoRALinear, ReLU, Sequential, Tanh
from lora_core.models import MultimodalModel, lora_layers

from .limits import MODALITY_FIELDS, size_problem

KINDS = {"bundle": "LoRA Lab run bundle", "adapter": "PEFT LoRA adapter"}
UNREADABLE = "This file could not be read as a checkpoint: it is not a LoRA Lab run bundle or a PEFT LoRA adapter."

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")  # torch.save / pickle files


class NeedsAdapterConfig(CheckpointError):
    """A bare adapter_model.safetensors arrived without its adapter_config.json."""


@dataclass
class Upload:
    """A checkpoint read from an upload: a run bundle (`run`) or a PEFT adapter (`adapter`)."""

    kind: str  # "bundle" or "adapter"
    name: str
    size: int
    summary: dict  # as `checkpoint.inspect_bundle` gives it: config, layers with singular values, final losses
    run: Run | None = None
    adapter: ck.Adapter | None = None


# == reading an upload ==============================================================================
def is_bare_safetensors(name: str, data: bytes) -> bool:
    """A single .safetensors file (an adapter_model.safetensors on its own) rather than a zip."""
    if name.lower().endswith(".zip"):
        return False
    return name.lower().endswith(".safetensors") or not data.startswith(b"PK\x03\x04")


def read_upload(name: str, data: bytes, *, adapter_config: bytes | None = None,
                task_for: Callable[[Config], object] | None = None) -> Upload:
    """Read and validate an upload: a run bundle, a PEFT adapter zip, or a bare adapter_model.safetensors
    with its `adapter_config` (JSON bytes). `task_for(config)` gives the (shared) task a bundle's run needs.

    Raises CheckpointError with one sentence (NeedsAdapterConfig when a bare adapter lacks its config).
    Nothing is unpickled or executed: JSON, CSV and safetensors only, all through `lora_core.checkpoint`.
    """
    if is_bare_safetensors(name, data):
        return _read_bare_adapter(name, data, adapter_config)
    try:
        summary = ck.inspect_bundle(data)
    except CheckpointError as error:
        unexpected = re.search(r"unexpected file '([^']+)'", str(error))
        if unexpected and unexpected.group(1).lower().endswith(PICKLE_SUFFIXES):
            raise CheckpointError(f"{unexpected.group(1)} in the upload is a pickle file, which LoRA Lab never "
                                  f"opens (unpickling can run code): save the adapter as safetensors, PEFT's "
                                  f"default.") from None
        raise
    if summary["format"] == "peft-lora":
        return Upload("adapter", name, len(data), summary, adapter=ck.read_adapter(data))
    config = Config.from_dict(summary["config"])  # inspect_bundle validated it
    problem = size_problem(config)
    if problem:
        raise CheckpointError(problem)
    try:
        task = task_for(config) if task_for is not None else None
    except ConfigError as error:
        raise CheckpointError(f"The bundle's settings cannot build its task: {error}") from None
    return Upload("bundle", name, len(data), summary, run=ck.load_bundle(data, task=task))


def _read_bare_adapter(name: str, data: bytes, adapter_config: bytes | None) -> Upload:
    keys = safetensors_keys(data)
    if not any(ck.PEFT_KEY.fullmatch(k) for k in keys):
        example = f" (e.g. {keys[0]!r})" if keys else ""
        raise CheckpointError(f"{name} holds no LoRA adapter tensors{example}: upload a PEFT adapter "
                              f"(keys like 'base_model.model.fc1.lora_A.weight') or a LoRA Lab run bundle (.zip).")
    if adapter_config is None:
        raise NeedsAdapterConfig("A bare adapter_model.safetensors needs its adapter_config.json (for r and "
                                 "lora_alpha): add it in the box above, or upload both zipped together.")
    adapter = ck.read_adapter(data, config=adapter_config)
    return Upload("adapter", name, len(data), adapter_summary(adapter), adapter=adapter)


def safetensors_keys(data: bytes) -> list[str]:
    """The tensor names in a safetensors file's header (nothing else is read)."""
    n = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    if not 2 <= n <= min(len(data) - 8, ck.MAX_JSON_BYTES):
        raise CheckpointError("The upload is neither a zip nor a safetensors file (it may be truncated or corrupted).")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (ValueError, RecursionError):
        header = None
    if not isinstance(header, dict):
        raise CheckpointError("The upload is not a valid safetensors file (its header is not a JSON object).")
    return [k for k in header if k != "__metadata__"]


def adapter_summary(adapter: ck.Adapter) -> dict:
    """The summary `inspect_bundle` gives for an adapter zip, for an adapter read any other way."""
    layers = [{"path": path, "A_shape": list(a.shape), "B_shape": list(b.shape),
               "singular_values": [float(s) for s in ck.singular_values(a, b, adapter.scale)]}
              for path, (a, b) in adapter.tensors.items()]
    return {"format": "peft-lora", "config": adapter.config, "rank": adapter.rank, "alpha": adapter.alpha,
            "scale": adapter.scale, "layers": layers}


def error_sentence(error: Exception) -> str:
    """What the page says about an upload that failed: the core's sentence, or one general sentence
    (an unexpected exception's text may be a stack detail that means nothing to a person)."""
    if isinstance(error, CheckpointError):
        return str(error)
    return UNREADABLE


# == names and tables ===============================================================================
def file_stem(config: Config, step_count: int) -> str:
    """`lora-lab-synthetic-r4-step500`: the modality, what trains (rank) and the step, for every download."""
    what = f"r{config.rank}" if config.method == "lora" else config.method
    return f"lora-lab-{config.modality}-{what}-step{step_count}"


def shape_text(shape) -> str:
    return " × ".join(str(int(n)) for n in shape) if len(shape) else "scalar"


def tensor_rows(upload: Upload) -> list[dict]:
    """One row per tensor in the upload: name, shape, dtype and what it is."""
    if upload.kind == "bundle":
        lora = {f"{path}.{n}" for path, _ in lora_layers(upload.run.model) for n in ("lora_A", "lora_B")}
        return [{"tensor": name, "shape": shape_text(p.shape), "dtype": str(p.value.dtype),
                 "role": "adapter (trained)" if name in lora else ("trained" if p.trainable else "frozen base")}
                for name, p in upload.run.model.named_parameters()]
    return [{"tensor": f"{ck.PEFT_PREFIX}{path}.lora_{which}.weight", "shape": shape_text(t.shape),
             "dtype": str(t.dtype), "role": "A (r × d_in)" if which == "A" else "B (d_out × r)"}
            for path, pair in upload.adapter.tensors.items() for which, t in zip("AB", pair)]


def spectra(summary: dict) -> dict[str, list[float]]:
    """Singular values of dW = scale·B·A for each adapter layer: {layer path: values}."""
    return {layer["path"]: layer["singular_values"] for layer in summary.get("layers", [])}


def _num(x) -> str:
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.4g}"


def metric_label(metric: str | None) -> str | None:
    return {"accuracy": "val accuracy", "bpc": "val bits/char"}.get(metric)


def metric_text(metric: str | None, value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{100 * value:.1f}%" if metric == "accuracy" else f"{value:.4g}"


def bundle_rows(run: Run) -> list[dict]:
    """The settings that matter, as (setting, value) rows of text."""
    c = run.config
    if c.method == "lora":
        scale = c.alpha / (math.sqrt(c.rank) if c.use_rslora else c.rank)
        adapter = f"LoRA r={c.rank}, alpha={c.alpha:g} (scale {scale:g}{', rsLoRA' if c.use_rslora else ''})"
    else:
        adapter = {"full": "full fine-tuning (no adapter)", "head": "head only (no adapter)"}[c.method]
    rows = [("modality", c.modality), ("what trains", adapter), ("optimizer", f"{c.optimizer}, lr={c.lr:g}"),
            ("steps", f"{run.step_count:,} of {c.steps:,}"), ("status", run.status + (f": {run.message}"
                                                                                     if run.message else "")),
            ("seed", str(c.seed))]
    return [{"setting": k, "value": v} for k, v in rows]


def adapter_rows(adapter: ck.Adapter) -> list[dict]:
    cfg = adapter.config
    rows = [("r", str(adapter.rank)), ("lora_alpha", f"{adapter.alpha:g}"),
            ("scale", f"{adapter.scale:g} (alpha / {'√r' if adapter.use_rslora else 'r'})"),
            ("target modules", ", ".join(adapter.target_modules)),
            ("lora_dropout", str(cfg.get("lora_dropout", "—"))),
            ("init_lora_weights", json.dumps(cfg.get("init_lora_weights", True))),
            ("base model", str(cfg.get("base_model_name_or_path") or "not named"))]
    return [{"setting": k, "value": v} for k, v in rows]


def final_losses(run: Run) -> dict[str, str]:
    h, metric = run.history, run.task.metric
    out = {"final train loss": _num(h.last("train_loss")), "final val loss": _num(h.last("val_loss"))}
    if metric_label(metric):
        out[metric_label(metric)] = metric_text(metric, h.last("val_metric"))
    return out


def compare_rows(uploaded: Run, current: Run) -> list[dict]:
    """Uploaded vs current: the settings that differ, then steps, status and final losses."""
    a, b = uploaded.config.to_dict(), current.config.to_dict()
    mine = {MODALITY_FIELDS[uploaded.config.modality], MODALITY_FIELDS[current.config.modality]}
    foreign = tuple(set(MODALITY_FIELDS.values()) - mine)  # settings neither run uses

    def row(name, x, y):
        return {"setting": name, "uploaded": x, "current": y}

    rows = [row(name, str(a[name]), str(b[name])) for name in a
            if a[name] != b[name] and name != "steps" and not name.startswith(foreign)]
    if not rows and a["steps"] == b["steps"]:
        rows.append(row("settings", "the same", "the same"))
    rows.append(row("steps", f"{uploaded.step_count:,} of {uploaded.config.steps:,}",
                    f"{current.step_count:,} of {current.config.steps:,}"))
    rows.append(row("status", uploaded.status, current.status))
    scores, theirs = final_losses(uploaded), final_losses(current)
    for key in dict.fromkeys([*scores, *theirs]):
        rows.append(row(key, scores.get(key, "—"), theirs.get(key, "—")))
    return rows


def score_rows(task_metric: str | None, scores: dict[str, dict]) -> list[dict]:
    """{model label: task.evaluate(...) result} as rows of text: model, val loss, metric."""
    rows = []
    for label, s in scores.items():
        row = {"model": label, "val loss": _num(s.get("loss"))}
        if metric_label(task_metric):
            row[metric_label(task_metric)] = metric_text(task_metric, s.get(task_metric))
        rows.append(row)
    return rows


# == a PEFT adapter on the current model ============================================================
def adapter_run(adapter: ck.Adapter, config: Config, task) -> Run:
    """A fresh run of `config`'s task whose LoRA layers hold the adapter's A and B (with its r and alpha).

    The base is the task's frozen base as built (an adapter trained with PiSSA belongs on its own residual
    base, which only its run bundle has). Raises CheckpointError naming the layer or shape that differs.
    """
    base = task.build_model()
    modules = dict(base.named_modules())
    linear = [path for path, m in modules.items() if type(m) is Linear]
    for path in adapter.tensors:
        if type(modules.get(path)) is not Linear:
            raise CheckpointError(f"The adapter has a layer {path!r} that the current {config.modality} model does "
                                  f"not have (its linear layers are {', '.join(linear)}).")
    for path, (a, b) in adapter.tensors.items():
        layer = modules[path]
        if a.shape[1] != layer.d_in or b.shape[0] != layer.d_out:
            raise CheckpointError(
                f"Layer {path} differs: the adapter's lora_A is {shape_text(a.shape)} and lora_B "
                f"{shape_text(b.shape)}, but the current {config.modality} model's {path} maps "
                f"{layer.d_in} → {layer.d_out} "
                f"(lora_A must be r × {layer.d_in} and lora_B {layer.d_out} × r).")
        if adapter.rank > min(layer.d_in, layer.d_out):
            raise CheckpointError(f"The adapter's rank {adapter.rank} is larger than layer {path} allows here "
                                  f"({layer.d_in} → {layer.d_out}: at most {min(layer.d_in, layer.d_out)}).")
    try:
        wanted = config.replace(method="lora", rank=adapter.rank, alpha=adapter.alpha, use_rslora=adapter.use_rslora,
                                init="kaiming", dropout=0.0, targets=",".join(adapter.target_modules))
        run = Run(wanted, task)
    except ConfigError as error:
        raise CheckpointError(f"The adapter cannot be put on the current model: {error}") from None
    layers = dict(lora_layers(run.model))
    for path, (a, b) in adapter.tensors.items():
        layers[path].lora_A.value[...] = a
        layers[path].lora_B.value[...] = b
    return run


# == the PEFT snippet ===============================================================================
_TORCH_LEAVES = {ReLU: "torch.nn.ReLU()", Tanh: "torch.nn.Tanh()", GELU: 'torch.nn.GELU(approximate="tanh")',
                 Flatten: "torch.nn.Flatten()"}


def _torch_leaf(module) -> str | None:
    if isinstance(module, (Linear, LoRALinear)):
        bias = "" if module.bias is not None else ", bias=False"
        return f"torch.nn.Linear({module.d_in}, {module.d_out}{bias})"
    if isinstance(module, Embedding):
        return f"torch.nn.Embedding({module.num}, {module.dim})"
    return _TORCH_LEAVES.get(type(module))


def _torch_lines(var: str, module) -> list[str]:
    """Lines that build `var` as a torch module with the same child names as `module`."""
    sequential = isinstance(module, Sequential) and not isinstance(module, MultimodalModel)
    lines = []
    for name, child in module._children.items():
        leaf = _torch_leaf(child)
        if leaf is not None:
            lines.append(f'{var}.add_module("{name}", {leaf})' if sequential else f"{var}.{name} = {leaf}")
            continue
        kind = "Sequential" if isinstance(child, Sequential) else "Module"
        lines.append(f"{var}.{name} = torch.nn.{kind}()")
        lines += _torch_lines(f"{var}.{name}", child)
    return lines


def peft_snippet(run: Run, stem: str) -> str:
    """Python that rebuilds `run`'s model in PyTorch (same module names) and loads the downloads into it:
    the base from the bundle's model.safetensors and the adapter through PEFT (or the merged weights)."""
    model = run.model
    if isinstance(model, MultimodalModel):
        head = [f"# The model in PyTorch with LoRA Lab's module names; its forward() is the {model.fusion} fusion",
                "# of lora_core/models.py (MultimodalModel), which these lines do not write.",
                "model = torch.nn.Module()"]
    else:
        head = ["# The same model in PyTorch, with LoRA Lab's module names", "model = torch.nn.Sequential()"]
    build = head + _torch_lines("model", model)
    if run.config.method != "lora":
        return "\n".join(["import torch", "from safetensors.torch import load_file", "", *build, "",
                                    f"# Merged weights: {stem}-merged.safetensors is a PyTorch state_dict",
                                    f'model.load_state_dict(load_file("{stem}-merged.safetensors"))'])
    c = run.config
    value = c.alpha / (math.sqrt(c.rank) if c.use_rslora else c.rank)
    scale = f"lora_alpha / {'√r' if c.use_rslora else 'r'} = {value:g}"
    return "\n".join(["import zipfile", "", "import torch",
        "from peft import PeftModel", "from safetensors.torch import load_file", "", *build, "",
        "# The frozen base: model.safetensors from the run bundle, minus the adapter's entries",
        f'zipfile.ZipFile("{stem}.zip").extract("model.safetensors", "bundle")',
        'base = load_file("bundle/model.safetensors")',
        'model.load_state_dict({k: v for k, v in base.items() if ".lora_" not in k})', "",
        f"# The adapter: PEFT reads r={c.rank}, lora_alpha={c.alpha:g} from adapter_config.json",
        f"# and applies the scale {scale} itself (A and B are stored unscaled)",
        f'zipfile.ZipFile("{stem}-adapter.zip").extractall("adapter_dir")',
        'model = PeftModel.from_pretrained(model, "adapter_dir")'])
