"""Checkpoints: PEFT adapters, merged weights and resumable run bundles, written and read without pickle.

PEFT LoRA adapter (`adapter_files`, `adapter_zip`; read back with `read_adapter`), the layout PEFT 0.21 writes:
    adapter_config.json        LoraConfig's own keys only (PEFT warns about any other key): peft_type "LORA",
                               r, lora_alpha, use_rslora, lora_dropout, target_modules (the module paths), ...
    adapter_model.safetensors  base_model.model.<path>.lora_A.weight (r, d_in) and .lora_B.weight (d_out, r),
                               float32, contiguous, metadata {"format": "pt"}
  A and B are stored as trained: PEFT applies scaling = lora_alpha / r (lora_alpha / sqrt(r) with use_rslora)
  itself. The adapter goes onto a torch model whose modules have the same names and whose base weights are
  the bundle's `model.safetensors` (a PyTorch state_dict: `fc1.weight`, `fc1.bias`, ...).
  PiSSA: the base to load the adapter onto is the *residual* base W0 - scale B0 A0, which is what our model's
  `weight` already holds (so `model.safetensors` is right as it is). Its config says init_lora_weights=true,
  not "pissa": with "pissa" PEFT would run PiSSA again at load time and subtract the principal part from the
  residual a second time (PEFT's own PiSSA conversion saves `true` for that reason).

Merged weights (`merged_weights`): safetensors of the adapted model's torch state_dict, every adapter merged
    (`fc1.weight` = W0 + scale B A, `fc1.bias`, ...), float32, metadata {"format": "pt"}.

Run bundle (`save_bundle`, `load_bundle`, `inspect_bundle`), a zip with fixed timestamps (same state, same bytes):
    lora_lab.json          {"format": "lora-lab-run", "format_version": 1, "config": Config.to_dict(),
                            "step_count", "status", "message", "start_loss", "train_time",
                            "optimizer": Optimizer.state_dict() meta}
                           (non-finite floats are written as the strings "nan", "inf", "-inf")
    model.safetensors      every param as it is (frozen base with biases, and adapters), model param names,
                           the model's dtype
    optimizer.safetensors  optimizer state arrays, "<param name>/<state name>"
    history.csv            History.to_csv()
    adapter/adapter_config.json, adapter/adapter_model.safetensors   (method "lora" only; as above)

Everything read is validated before it is used, and every problem raises `CheckpointError` with one sentence
saying what is wrong. Nothing is ever unpickled, evaluated or executed: JSON, CSV and safetensors only.
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from .config import Config
from .errors import CheckpointError, ConfigError
from .models import lora_layers
from .trainer import History, Run

FORMAT_NAME = "lora-lab-run"
FORMAT_VERSION = 1
SUPPORTED_DTYPES = ("float32", "float64")
MAX_MEMBER_BYTES = 64 * 2 ** 20  # uncompressed size of one zip member
MAX_TOTAL_BYTES = 256 * 2 ** 20  # uncompressed size of all members together, and of an uploaded file
MAX_MEMBERS = 16
MAX_JSON_BYTES = 2 ** 20  # lora_lab.json, adapter_config.json
MAX_TENSORS = 4096  # per safetensors file
MAX_MESSAGE_CHARS = 2000

BUNDLE_JSON, MODEL_FILE, OPTIMIZER_FILE, HISTORY_FILE = ("lora_lab.json", "model.safetensors",
                                                         "optimizer.safetensors", "history.csv")
ADAPTER_CONFIG, ADAPTER_WEIGHTS = "adapter_config.json", "adapter_model.safetensors"
ADAPTER_DIR = "adapter/"
BUNDLE_REQUIRED = (BUNDLE_JSON, MODEL_FILE, OPTIMIZER_FILE, HISTORY_FILE)
BUNDLE_MEMBERS = BUNDLE_REQUIRED + (ADAPTER_DIR + ADAPTER_CONFIG, ADAPTER_DIR + ADAPTER_WEIGHTS)
BUNDLE_KEYS = ("format", "format_version", "config", "step_count", "status", "message", "start_loss",
               "train_time", "optimizer")
STATUSES = ("ready", "running", "done", "diverged")
PEFT_PREFIX = "base_model.model."
PEFT_KEY = re.compile(r"base_model\.model\.((?:[A-Za-z0-9_]+\.)*[A-Za-z0-9_]+)\.lora_([AB])\.weight")
# adapter_config.json settings that change what the saved tensors mean; LoRA Lab needs these values (or absent)
PLAIN_LORA = {"use_dora": False, "fan_in_fan_out": False, "bias": "none", "lora_bias": False, "rank_pattern": {},
              "alpha_pattern": {}, "modules_to_save": []}
INIT_LORA_WEIGHTS = {"kaiming": True, "gaussian": "gaussian", "pissa": True}  # pissa: see the module docstring

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_ST_DTYPES = {"F32": "float32", "F64": "float64", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
              "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "U16": "uint16", "U32": "uint32",
              "U64": "uint64", "BOOL": "bool"}


def _fail(message: str) -> NoReturn:
    raise CheckpointError(message)


# == writing ======================================================================================
def adapter_files(run: Run) -> dict[str, bytes]:
    """The PEFT adapter of a LoRA run: {"adapter_config.json": ..., "adapter_model.safetensors": ...}."""
    layers = _adapter_layers(run)
    first = layers[0][1]
    config = {
        "peft_type": "LORA", "task_type": None, "r": first.r, "lora_alpha": first.alpha,
        "target_modules": [path for path, _ in layers], "use_rslora": first.use_rslora,
        "lora_dropout": first.dropout, "bias": "none", "init_lora_weights": INIT_LORA_WEIGHTS[first.init],
        "fan_in_fan_out": False, "modules_to_save": None, "base_model_name_or_path": None, "inference_mode": True,
        "revision": None, "rank_pattern": {}, "alpha_pattern": {}, "layers_to_transform": None,
        "layers_pattern": None, "use_dora": False}
    tensors = {}
    for path, layer in layers:
        tensors[f"{PEFT_PREFIX}{path}.lora_A.weight"] = np.ascontiguousarray(layer.lora_A.value, dtype=np.float32)
        tensors[f"{PEFT_PREFIX}{path}.lora_B.weight"] = np.ascontiguousarray(layer.lora_B.value, dtype=np.float32)
    return {ADAPTER_CONFIG: _json_bytes(config), ADAPTER_WEIGHTS: _safetensors(tensors, {"format": "pt"})}


def adapter_zip(run: Run) -> bytes:
    """`adapter_files(run)` as one zip (deterministic bytes)."""
    return _zip(adapter_files(run))


def merged_weights(run: Run) -> bytes:
    """Safetensors of the model's torch state_dict with every adapter merged: `fc1.weight` = W0 + scale B A.

    The run's model is left as it is: the merged weights are new arrays.
    """
    lora = dict(lora_layers(run.model))
    adapter_names = {f"{path}.{name}" for path in lora for name in ("lora_A", "lora_B")}
    out = {}
    for name, p in run.model.named_parameters():
        if name in adapter_names:
            continue
        value = p.value
        path, _, leaf = name.rpartition(".")
        layer = lora.get(path)
        if leaf == "weight" and layer is not None and not layer.merged:
            value = value + layer.delta_weight()
        out[name] = np.ascontiguousarray(value, dtype=np.float32)
    _check_finite_arrays(out, "the merged weights")
    return _safetensors(out, {"format": "pt"})


def save_bundle(run: Run) -> bytes:
    """The whole run as a zip that `load_bundle` resumes exactly (see the module docstring)."""
    merged = [path for path, layer in lora_layers(run.model) if layer.merged]
    if merged:
        _fail(f"Layer {merged[0]} is merged into its base weight: unmerge it before saving the run.")
    model = {name: np.ascontiguousarray(p.value) for name, p in run.model.named_parameters()}
    arrays, meta = run.optimizer.state_dict()
    _check_finite_arrays(model, "the model")
    _check_finite_arrays(arrays, "the optimizer state")
    info = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "config": run.config.to_dict(),
            "step_count": int(run.step_count), "status": run.status, "message": run.message,
            "start_loss": _float_out(run.start_loss), "train_time": float(run.train_time), "optimizer": meta}
    files = {BUNDLE_JSON: _json_bytes(info), MODEL_FILE: _safetensors(model, {"format": "np"}),
             OPTIMIZER_FILE: _safetensors({k: np.ascontiguousarray(v) for k, v in arrays.items()},
                                          {"format": "np"}),
             HISTORY_FILE: run.history.to_csv().encode("utf-8")}
    if run.config.method == "lora":
        files.update({ADAPTER_DIR + name: data for name, data in adapter_files(run).items()})
    return _zip(files)


def _adapter_layers(run: Run):
    if run.config.method != "lora":
        _fail(f"This run has no adapter: it was trained with method={run.config.method}; "
              f"download the merged weights instead.")
    layers = lora_layers(run.model)
    if not layers:
        _fail("This run's model has no LoRA layers, so there is no adapter to save.")
    _check_finite_arrays({f"{path}.{n}": getattr(layer, n).value for path, layer in layers
                          for n in ("lora_A", "lora_B")}, "the adapter")
    return layers


def _check_finite_arrays(arrays: dict, what: str) -> None:
    for name, value in arrays.items():
        if not np.isfinite(value).all():
            _fail(f"{name} in {what} holds NaN or infinite values (the run diverged): there is nothing "
                  f"usable to save; train again with a smaller learning rate.")


def _json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")


def _safetensors(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    from safetensors.numpy import save

    return save(tensors, metadata=metadata)


def _zip(files: dict[str, bytes]) -> bytes:
    """A zip of `files` with sorted names and fixed timestamps, so equal contents give equal bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            zf.writestr(info, files[name])
    return out.getvalue()


def _float_out(x: float):
    """A float for strict JSON: finite as a number, else "nan", "inf" or "-inf"."""
    x = float(x)
    return x if math.isfinite(x) else repr(x)


# == reading: archives ==============================================================================
def _as_bytes(data, what: str) -> bytes:
    """The raw bytes of an upload: bytes-like, or a path to a file (read with a size bound)."""
    if isinstance(data, (str, Path)):
        try:
            with open(data, "rb") as f:
                raw = f.read(MAX_TOTAL_BYTES + 1)
        except OSError as e:
            _fail(f"The {what} file cannot be read: {e.strerror or e}.")
    elif isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
    else:
        _fail(f"The {what} must be bytes or a file path, not {type(data).__name__}.")
    if len(raw) > MAX_TOTAL_BYTES:
        _fail(f"The {what} is larger than {MAX_TOTAL_BYTES // 2 ** 20} MB, the limit for an upload.")
    return raw


def _open_zip(raw: bytes, what: str) -> zipfile.ZipFile:
    count = _entry_count(raw)
    if count is not None and count > MAX_MEMBERS:
        _fail(f"The {what} has {count} entries; a valid one has at most {MAX_MEMBERS}.")
    try:
        return zipfile.ZipFile(io.BytesIO(raw))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError, NotImplementedError,
            RuntimeError):  # NotImplementedError: a zip version zipfile does not know
        _fail(f"The {what} is not a valid zip file (it may be truncated or corrupted).")


def _entry_count(raw: bytes) -> int | None:
    """The entry count a zip's end record declares (None if there is none), read before zipfile builds one
    object per entry: a small hostile zip can declare millions of entries."""
    end = raw.rfind(b"PK\x05\x06", max(0, len(raw) - 22 - 0xFFFF))
    if end < 0 or end + 22 > len(raw):
        return None  # not a zip: zipfile says so
    count = int.from_bytes(raw[end + 10:end + 12], "little")
    zip64 = raw[end - 76:end - 20] if end >= 76 else b""
    if count == 0xFFFF and raw[end - 20:end - 16] == b"PK\x06\x07" and zip64[:4] == b"PK\x06\x06":
        count = int.from_bytes(zip64[32:40], "little")  # zip64 end record, just before its locator
    return count


def _checked_members(zf: zipfile.ZipFile, allowed, allowed_dirs, what: str) -> list[zipfile.ZipInfo]:
    """The zip's file members, after checking names, count, sizes and flags (nothing is read yet)."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        _fail(f"The {what} has {len(infos)} entries; a valid one has at most {MAX_MEMBERS}.")
    seen, files, total = set(), [], 0
    for info in infos:
        name = info.filename
        if name in seen:
            _fail(f"The {what} contains {name!r} twice.")
        seen.add(name)
        _check_name(name, what)
        if info.is_dir():
            if name not in allowed_dirs:
                _fail(f"The {what} contains an unexpected folder {name!r}; the expected entries are {sorted(allowed)}.")
            continue
        if name not in allowed:
            _fail(f"The {what} contains an unexpected file {name!r}; the expected entries are {sorted(allowed)}.")
        if info.flag_bits & 0x1:
            _fail(f"{name} in the {what} is encrypted; upload an unencrypted zip.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            _fail(f"{name} in the {what} uses an unsupported compression; use a plain (deflate) zip.")
        if info.file_size > MAX_MEMBER_BYTES:
            _fail(f"{name} in the {what} is {info.file_size / 2 ** 20:.0f} MB uncompressed; "
                  f"the limit is {MAX_MEMBER_BYTES // 2 ** 20} MB per file.")
        total += info.file_size
        files.append(info)
    if total > MAX_TOTAL_BYTES:
        _fail(f"The {what} holds {total / 2 ** 20:.0f} MB uncompressed; the limit is {MAX_TOTAL_BYTES // 2 ** 20} MB.")
    return files


def _check_name(name: str, what: str) -> None:
    parts = name.rstrip("/").split("/")
    if (not name or name.startswith("/") or "\\" in name or ":" in name or "\0" in name
            or any(part in ("", ".", "..") for part in parts)):
        _fail(f"The {what} contains an unsafe entry name {name!r} (absolute, or with '..'); it is refused.")


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, what: str) -> bytes:
    """A member's bytes, read with a bound (a lying size header cannot make it read more)."""
    try:
        with zf.open(info) as f:
            data = f.read(MAX_MEMBER_BYTES + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError, NotImplementedError) as e:
        _fail(f"{info.filename} in the {what} cannot be read (the zip is corrupted: {e}).")
    if len(data) != info.file_size:
        _fail(f"{info.filename} in the {what} is corrupted (its size does not match the zip's directory).")
    return data


def _read_zip(raw: bytes, allowed, what: str, allowed_dirs=()) -> dict[str, bytes]:
    zf = _open_zip(raw, what)
    with zf:
        infos = _checked_members(zf, allowed, allowed_dirs, what)  # all checked before anything is read
        return {info.filename: _read_member(zf, info, what) for info in infos}


def _parse_json(raw: bytes, name: str):
    if len(raw) > MAX_JSON_BYTES:
        _fail(f"{name} is larger than {MAX_JSON_BYTES // 2 ** 20} MB; a valid one is a few kB.")

    def no_constants(token):
        raise ValueError(token)

    try:
        return json.loads(raw.decode("utf-8"), parse_constant=no_constants)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        _fail(f"{name} is not valid JSON.")


def _st_header(raw: bytes, name: str) -> tuple[dict, dict]:
    """(metadata, {tensor: (dtype name, shape)}) from a safetensors header, checked before any data is touched."""
    if len(raw) < 8:
        _fail(f"{name} is not a safetensors file (it is too short).")
    n = int.from_bytes(raw[:8], "little")
    if n > min(len(raw) - 8, MAX_JSON_BYTES):
        _fail(f"{name} is not a safetensors file (its header length is invalid).")
    header = _parse_json(raw[8:8 + n], f"The header of {name}")
    if not isinstance(header, dict):
        _fail(f"{name} is not a safetensors file (its header is not a JSON object).")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        _fail(f"{name} is not a valid safetensors file (its metadata is not a JSON object).")
    if len(header) > MAX_TENSORS:
        _fail(f"{name} holds {len(header)} tensors; the limit is {MAX_TENSORS}.")
    specs = {}
    for key, spec in header.items():
        if not (isinstance(spec, dict) and isinstance(spec.get("dtype"), str) and isinstance(spec.get("shape"), list)):
            _fail(f"{name} is not a valid safetensors file (the entry for {key!r} is malformed).")
        dtype = _ST_DTYPES.get(spec["dtype"], spec["dtype"])
        if dtype not in SUPPORTED_DTYPES:
            _fail(f"{key} in {name} has dtype {dtype}; only {' and '.join(SUPPORTED_DTYPES)} are supported.")
        specs[key] = (dtype, spec["shape"])
    return metadata, specs


def _read_safetensors(raw: bytes, name: str) -> tuple[dict, dict[str, np.ndarray]]:
    """(metadata, tensors): float32/float64, finite, parsed by the safetensors library (never pickle)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    metadata, _ = _st_header(raw, name)
    try:
        tensors = load(raw)
    except (SafetensorError, KeyError, ValueError, TypeError, OverflowError) as e:
        _fail(f"{name} is not a valid safetensors file ({e}).")
    for key, value in tensors.items():
        if value.dtype.name not in SUPPORTED_DTYPES:  # the header check already ensures this
            _fail(f"{key} in {name} has dtype {value.dtype}; only {' and '.join(SUPPORTED_DTYPES)} are supported.")
        if not np.isfinite(value).all():
            _fail(f"{key} in {name} holds NaN or infinite values.")
    return metadata, tensors


# == run bundles ====================================================================================
@dataclass
class _Bundle:
    """A bundle's parts, parsed and checked on their own (not yet against a model)."""

    info: dict
    config: Config
    model: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray]
    history: History
    adapter: "Adapter | None"


def _read_bundle(data) -> _Bundle:
    raw = _as_bytes(data, "run bundle")
    files = _read_zip(raw, BUNDLE_MEMBERS, "run bundle", allowed_dirs=(ADAPTER_DIR,))
    missing = [name for name in BUNDLE_REQUIRED if name not in files]
    if missing:
        _fail(f"The run bundle lacks {', '.join(missing)}: it is not a complete LoRA Lab run bundle.")
    info = _parse_json(files[BUNDLE_JSON], BUNDLE_JSON)
    config = _check_info(info)
    model = _read_safetensors(files[MODEL_FILE], MODEL_FILE)[1]
    optimizer = _read_safetensors(files[OPTIMIZER_FILE], OPTIMIZER_FILE)[1]
    history = _read_history(files[HISTORY_FILE], info["step_count"])
    adapter_names = [ADAPTER_DIR + ADAPTER_CONFIG, ADAPTER_DIR + ADAPTER_WEIGHTS]
    present = [name in files for name in adapter_names]
    if any(present) and not all(present):
        _fail("The run bundle has only one of the two adapter files; it needs both or neither.")
    adapter = _adapter_from_files(files[adapter_names[0]], files[adapter_names[1]]) if all(present) else None
    return _Bundle(info, config, model, optimizer, history, adapter)


def _check_info(info) -> Config:
    """Check lora_lab.json's schema and return its config."""
    if not isinstance(info, dict) or info.get("format") != FORMAT_NAME:
        _fail(f"{BUNDLE_JSON} does not describe a LoRA Lab run (its format should be {FORMAT_NAME!r}).")
    if info.get("format_version") != FORMAT_VERSION:
        _fail(f"The bundle has format version {info.get('format_version')!r}; this LoRA Lab reads "
              f"version {FORMAT_VERSION}.")
    missing, unknown = sorted(set(BUNDLE_KEYS) - set(info)), sorted(set(info) - set(BUNDLE_KEYS))
    if missing:
        _fail(f"{BUNDLE_JSON} lacks the keys {missing}.")
    if unknown:
        _fail(f"{BUNDLE_JSON} has unknown keys {unknown}; version {FORMAT_VERSION} has only {list(BUNDLE_KEYS)}.")
    if not isinstance(info["config"], dict):
        _fail(f"The run config in {BUNDLE_JSON} is not a JSON object.")
    for key, value in info["config"].items():
        if _is_number(value) and _finite(value) is None:
            _fail(f"The bundle's run config is not valid: {key}={value!r} is not a finite number.")
    try:
        config = Config.from_dict(info["config"])
    except ConfigError as e:
        _fail(f"The bundle's run config is not valid: {e}")
    _check_run_state(info, config)
    return config


def _check_run_state(info: dict, config: Config) -> None:
    steps = info["step_count"]
    if not _is_int(steps) or not 0 <= steps <= config.steps:
        _fail(f"step_count={steps!r} in {BUNDLE_JSON} must be a whole number from 0 to steps={config.steps}.")
    status = info["status"]
    if status not in STATUSES:
        _fail(f"status={status!r} in {BUNDLE_JSON} must be one of {STATUSES}.")
    if (status == "ready" and steps != 0) or (status == "done" and steps != config.steps):
        _fail(f"status={status!r} does not fit step_count={steps} of steps={config.steps} in {BUNDLE_JSON}.")
    if not isinstance(info["message"], str) or len(info["message"]) > MAX_MESSAGE_CHARS:
        _fail(f"message in {BUNDLE_JSON} must be a text of at most {MAX_MESSAGE_CHARS} characters.")
    _float_in(info["start_loss"], "start_loss")
    train_time = info["train_time"]
    if not _is_number(train_time) or _finite(train_time) is None or train_time < 0:
        _fail(f"train_time={train_time!r} in {BUNDLE_JSON} must be a number of seconds >= 0.")
    if not isinstance(info["optimizer"], dict):
        _fail(f"The optimizer state in {BUNDLE_JSON} is not a JSON object.")


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _finite(x) -> float | None:
    """x as a finite float, or None (NaN, infinite, or an int too large for a float)."""
    try:
        x = float(x)
    except OverflowError:
        return None
    return x if math.isfinite(x) else None


def _float_in(value, name: str) -> float:
    if _is_number(value) and _finite(value) is not None:
        return float(value)
    if value in ("nan", "inf", "-inf"):
        return float(value)
    _fail(f"{name}={value!r} in {BUNDLE_JSON} must be a number (or 'nan', 'inf', '-inf').")


def _read_history(raw: bytes, step_count: int) -> History:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        _fail(f"{HISTORY_FILE} is not UTF-8 text.")
    if text.count("\n") > step_count + 2:  # cheap, before parsing: each row becomes Python objects
        _fail(f"{HISTORY_FILE} has more lines than the bundle's {step_count} steps.")
    try:
        history = History.from_csv(text)  # raises CheckpointError itself, but lets the csv module's errors out
    except csv.Error as e:
        _fail(f"{HISTORY_FILE} is not a valid CSV file ({e}).")
    if len(history) != step_count:
        _fail(f"{HISTORY_FILE} has {len(history)} rows but the bundle records {step_count} steps.")
    if not np.array_equal(history.array("step"), np.arange(1, step_count + 1)):
        _fail(f"The step column of {HISTORY_FILE} must count 1, 2, ... {step_count}.")
    return history


def load_bundle(data: bytes | str | Path, *, task=None) -> Run:
    """A `Run` restored from `save_bundle` bytes (or a path to them), ready to continue exactly where it stopped.

    Everything is checked first: the archive, the JSON, the config, every tensor's name, dtype, shape and
    values against a model freshly built from the bundle's config, the optimizer state and the history.
    `task`, if given, must be the task of the bundle's config (e.g. from a cache keyed by `config.task_key()`);
    otherwise it is built from the config.
    """
    bundle = _read_bundle(data)
    run = _fresh_run(bundle.config, task)
    _check_model(bundle.model, run)
    if bundle.adapter is not None:
        _check_bundle_adapter(bundle.adapter, bundle.model, bundle.config)
    _load_optimizer(run, bundle.optimizer, bundle.info["optimizer"], bundle.info["step_count"])
    run.model.load_state_dict(bundle.model)  # names and shapes were checked above: this cannot fail
    info = bundle.info
    run.history = bundle.history
    run.step_count = info["step_count"]
    run.status, run.message = info["status"], info["message"]
    run.start_loss = _float_in(info["start_loss"], "start_loss")
    run.train_time = float(info["train_time"])
    return run


def _fresh_run(config: Config, task) -> Run:
    if task is not None and getattr(task, "modality", None) != config.modality:
        _fail(f"The task passed in is for modality {getattr(task, 'modality', None)!r} but the bundle is a "
              f"{config.modality!r} run.")
    try:
        return Run(config, task)
    except ConfigError as e:
        _fail(f"The bundle's run config cannot build a model: {e}")


def _check_model(tensors: dict[str, np.ndarray], run: Run) -> None:
    """Names, dtypes and shapes exactly those of the freshly built model."""
    params = dict(run.model.named_parameters())
    missing, unexpected = sorted(set(params) - set(tensors)), sorted(set(tensors) - set(params))
    if missing or unexpected:
        _fail(f"{MODEL_FILE} does not match the model of the bundle's config: missing {missing[:5]}, "
              f"unexpected {unexpected[:5]}.")
    for name, p in params.items():
        value = tensors[name]
        if value.dtype != p.value.dtype:
            _fail(f"{name} in {MODEL_FILE} is {value.dtype} but the run's config says dtype={p.value.dtype}.")
        if value.shape != p.value.shape:
            _fail(f"{name} in {MODEL_FILE} has shape {value.shape} but the model of the bundle's config "
                  f"needs {p.value.shape}.")


def _check_bundle_adapter(adapter: "Adapter", tensors: dict[str, np.ndarray], config: Config) -> None:
    """The bundle's adapter/ files must say what its model.safetensors and config say."""
    pairs = _model_adapters(tensors)
    same = sorted(adapter.tensors) == sorted(pairs) and (adapter.rank, adapter.scale) == (config.rank, _scale(config))
    for path, (a, b) in pairs.items():
        same = same and all(np.array_equal(saved, np.asarray(mine, dtype=np.float32))
                            for saved, mine in zip(adapter.tensors[path], (a, b)))
    if not same:
        _fail(f"The bundle's {ADAPTER_DIR} files do not match its {MODEL_FILE} and config.")


def _scale(config: Config) -> float:
    return config.alpha / (math.sqrt(config.rank) if config.use_rslora else config.rank)


def _load_optimizer(run: Run, arrays: dict[str, np.ndarray], meta: dict, run_steps: int) -> None:
    opt = run.optimizer
    expected = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
    params = dict(run.params)
    for key, value in arrays.items():
        param = params.get(key.rpartition("/")[0])
        if param is not None and value.dtype != param.value.dtype:
            _fail(f"{key} in {OPTIMIZER_FILE} is {value.dtype} but the model is {param.value.dtype}.")
    if meta.get("steps") != run_steps:  # one optimizer step per training step, none on a diverged one
        _fail(f"The optimizer state in {BUNDLE_JSON} records {meta.get('steps')!r} steps but the run made {run_steps}.")
    try:
        opt.load_state_dict(arrays, meta)
    except CheckpointError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as e:
        _fail(f"The optimizer state in {BUNDLE_JSON} is malformed ({e}).")
    if any(n > run_steps for n in opt.param_steps.values()):
        _fail(f"The optimizer state in {BUNDLE_JSON} has a parameter with more steps than the run's {run_steps}.")
    for group, (saved, wanted) in enumerate(zip(opt.param_groups, expected)):
        for key, value in wanted.items():
            if saved.get(key) != value:
                _fail(f"The optimizer state in {BUNDLE_JSON} has {key}={saved.get(key)!r} (group {group}) but the "
                      f"run config gives {key}={value!r}.")


def inspect_bundle(data: bytes | str | Path) -> dict:
    """A JSON-serialisable summary of a run bundle or of a PEFT adapter zip, validated but not loaded."""
    raw = _as_bytes(data, "upload")
    if _is_adapter_zip(raw):
        adapter = read_adapter(raw)
        return {"format": "peft-lora", "config": adapter.config, "rank": adapter.rank, "alpha": adapter.alpha,
                "scale": adapter.scale, "layers": [_layer_summary(path, a, b, adapter.scale)
                                                   for path, (a, b) in adapter.tensors.items()],
                "tensors": {"adapter": _tensor_stats([x for pair in adapter.tensors.values() for x in pair])}}
    bundle = _read_bundle(raw)
    if bundle.adapter is not None:
        _check_bundle_adapter(bundle.adapter, bundle.model, bundle.config)
    c, h = bundle.config, bundle.history
    scale, pairs = _scale(c), _model_adapters(bundle.model)
    return {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "config": c.to_dict(),
        "step_count": bundle.info["step_count"], "status": bundle.info["status"], "message": bundle.info["message"],
        "final_train_loss": _json_float(h.last("train_loss")), "final_val_loss": _json_float(h.last("val_loss")),
        "final_val_metric": _json_float(h.last("val_metric")),
        "layers": [_layer_summary(path, a, b, scale) for path, (a, b) in _ordered(pairs, bundle.adapter).items()],
        "tensors": {"model": _tensor_stats(bundle.model.values()),
                    "optimizer": _tensor_stats(bundle.optimizer.values())},
    }


def _is_adapter_zip(raw: bytes) -> bool:
    """A PEFT adapter zip (adapter_config.json, no lora_lab.json) rather than a run bundle."""
    zf = _open_zip(raw, "upload")
    with zf:
        names = zf.namelist()
    return BUNDLE_JSON not in names and any(n.rpartition("/")[2] == ADAPTER_CONFIG for n in names)


def _model_adapters(tensors: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    paths = sorted({k.rpartition(".")[0] for k in tensors if k.endswith((".lora_A", ".lora_B"))}, key=_natural)
    pairs = {}
    for path in paths:
        a, b = tensors.get(f"{path}.lora_A"), tensors.get(f"{path}.lora_B")
        pairs[path] = _check_pair(path, a, b, MODEL_FILE)
    return pairs


def _ordered(pairs: dict, adapter: "Adapter | None") -> dict:
    """Layers in model order where the bundle's adapter tells it (safetensors files sort their keys)."""
    return {path: pairs[path] for path in adapter.target_modules} if adapter is not None else pairs


def _natural(text: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _tensor_stats(arrays) -> dict:
    arrays = list(arrays)
    return {"count": len(arrays), "bytes": int(sum(a.nbytes for a in arrays))}


def _json_float(x: float):
    return float(x) if math.isfinite(x) else None


def _layer_summary(path: str, a: np.ndarray, b: np.ndarray, scale: float) -> dict:
    return {"path": path, "A_shape": list(a.shape), "B_shape": list(b.shape),
            "singular_values": [float(s) for s in singular_values(a, b, scale)]}


def singular_values(a: np.ndarray, b: np.ndarray, scale: float) -> np.ndarray:
    """Singular values of dW = scale * B @ A, from the small factors only (dW is never formed).

    B = Qb Rb and A^T = Qa Ra (thin QR), so dW = Qb (scale Rb Ra^T) Qa^T and the singular values are those
    of the small core scale * Rb @ Ra^T (at most r x r).
    """
    _, rb = np.linalg.qr(np.asarray(b, dtype=np.float64))
    _, ra = np.linalg.qr(np.asarray(a, dtype=np.float64).T)
    return np.linalg.svd(abs(scale) * (rb @ ra.T), compute_uv=False)


# == PEFT adapters ==================================================================================
@dataclass(frozen=True)
class Adapter:
    """A PEFT LoRA adapter read from an upload. `tensors[path] = (A (r, d_in), B (d_out, r))`."""

    config: dict
    tensors: dict[str, tuple[np.ndarray, np.ndarray]]
    rank: int
    alpha: float
    scale: float  # alpha / r, or alpha / sqrt(r) with use_rslora
    target_modules: list[str]  # the adapted module paths: in target_modules' order if it lists them, else natural
    use_rslora: bool = False

    def delta_weight(self, path: str) -> np.ndarray:
        """dW = scale * B @ A of one layer, (d_out, d_in)."""
        a, b = self.tensors[path]
        return self.scale * (b @ a)


def read_adapter(data: bytes | str | Path, config: dict | str | bytes | None = None) -> Adapter:
    """A PEFT LoRA adapter from an upload, validated: a zip with adapter_config.json and
    adapter_model.safetensors (at the top or in one folder, as zipping PEFT's output folder gives; a LoRA Lab
    run bundle works too), or a bare adapter_model.safetensors with its `config` (a dict or JSON text).
    """
    raw = _as_bytes(data, "adapter")
    if raw[:4] != b"PK\x03\x04":
        if config is None:
            _fail("A bare adapter_model.safetensors needs its adapter_config.json too (for r and lora_alpha).")
        return _adapter_from_files(_config_bytes(config), raw)
    if config is not None:
        _fail("Give the adapter config separately only with a bare adapter_model.safetensors, not with a zip.")
    return _read_adapter_zip(raw)


def _config_bytes(config) -> bytes:
    if isinstance(config, dict):
        try:
            return _json_bytes(config)
        except (TypeError, ValueError):
            _fail("The adapter config is not plain JSON data (numbers must be finite).")
    if isinstance(config, str):
        return config.encode("utf-8")
    if isinstance(config, (bytes, bytearray, memoryview)):
        return bytes(config)
    _fail(f"The adapter config must be a dict or JSON text, not {type(config).__name__}.")


def _read_adapter_zip(raw: bytes) -> Adapter:
    """The adapter in a PEFT zip (files at the top or in one folder) or in a LoRA Lab run bundle."""
    zf = _open_zip(raw, "adapter zip")
    with zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
    if BUNDLE_JSON in names:
        bundle = _read_bundle(raw)
        if bundle.adapter is None:
            _fail(f"This run bundle has no adapter: it was trained with method={bundle.config.method}.")
        return bundle.adapter
    folders = {n.rpartition("/")[0] for n in names}
    folder = (folders.pop() + "/") if len(folders) == 1 and "" not in folders else ""
    allowed = [folder + n for n in (ADAPTER_CONFIG, ADAPTER_WEIGHTS, "README.md")]
    parents = ["/".join(folder.split("/")[:i]) + "/" for i in range(1, folder.count("/") + 1)]
    files = _read_zip(raw, allowed, "adapter zip", allowed_dirs=parents)
    missing = [n for n in (ADAPTER_CONFIG, ADAPTER_WEIGHTS) if folder + n not in files]
    if missing:
        _fail(f"The upload has no {' and no '.join(missing)}: it is not a PEFT LoRA adapter.")
    return _adapter_from_files(files[folder + ADAPTER_CONFIG], files[folder + ADAPTER_WEIGHTS])


def _adapter_from_files(config_raw: bytes, weights_raw: bytes) -> Adapter:
    config = _parse_json(config_raw, ADAPTER_CONFIG)
    r, alpha, use_rslora = _check_adapter_config(config)
    metadata, tensors = _read_safetensors(weights_raw, ADAPTER_WEIGHTS)
    if metadata.get("format") not in (None, "pt", "np"):
        _fail(f"{ADAPTER_WEIGHTS} has format {metadata.get('format')!r} in its metadata; PEFT writes 'pt'.")
    pairs = _adapter_pairs(tensors)
    for path, (a, b) in pairs.items():
        if a.shape[0] != r:
            _fail(f"{path} has rank {a.shape[0]} but adapter_config.json says r={r}.")
    targets = config.get("target_modules")
    _check_targets(targets, list(pairs))
    if isinstance(targets, list) and sorted(targets) == sorted(pairs):  # exact paths (as LoRA Lab writes): model order
        pairs = {path: pairs[path] for path in targets}
    scale = alpha / (math.sqrt(r) if use_rslora else r)
    return Adapter(config, pairs, r, alpha, scale, list(pairs), use_rslora)


def _check_adapter_config(config) -> tuple[int, float, bool]:
    """(r, lora_alpha, use_rslora) from a PEFT adapter_config.json, refusing what LoRA Lab cannot apply."""
    if not isinstance(config, dict):
        _fail(f"{ADAPTER_CONFIG} is not a JSON object.")
    if config.get("peft_type") != "LORA":
        _fail(f"{ADAPTER_CONFIG} has peft_type={config.get('peft_type')!r}; only LoRA adapters ('LORA') are supported.")
    r, alpha, use_rslora = config.get("r"), config.get("lora_alpha"), config.get("use_rslora", False)
    if not _is_int(r) or r < 1:
        _fail(f"r={r!r} in {ADAPTER_CONFIG} must be a whole number >= 1.")
    if not _is_number(alpha) or not math.isfinite(alpha) or alpha <= 0:
        _fail(f"lora_alpha={alpha!r} in {ADAPTER_CONFIG} must be a number > 0.")
    if not isinstance(use_rslora, bool):
        _fail(f"use_rslora={use_rslora!r} in {ADAPTER_CONFIG} must be true or false.")
    for key, plain in PLAIN_LORA.items():
        if config.get(key) not in (None, plain):
            _fail(f"{key}={config.get(key)!r} in {ADAPTER_CONFIG} is not supported: LoRA Lab reads plain LoRA "
                  f"adapters ({key} must be {plain!r}).")
    return r, float(alpha), use_rslora


def _adapter_pairs(tensors: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    parts: dict[str, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        match = PEFT_KEY.fullmatch(key)
        if match is None:
            _fail(f"{ADAPTER_WEIGHTS} has a tensor {key!r}; a LoRA adapter has only keys "
                  f"'base_model.model.<module>.lora_A.weight' and '...lora_B.weight'.")
        parts.setdefault(match.group(1), {})[match.group(2)] = np.array(value)
    if not parts:
        _fail(f"{ADAPTER_WEIGHTS} holds no LoRA tensors.")
    return {path: _check_pair(path, parts[path].get("A"), parts[path].get("B"), ADAPTER_WEIGHTS)
            for path in sorted(parts, key=_natural)}


def _check_pair(path: str, a, b, name: str) -> tuple[np.ndarray, np.ndarray]:
    if a is None or b is None:
        _fail(f"{path} in {name} has lora_{'A' if a is None else 'B'} missing; each layer needs both.")
    if a.ndim != 2 or b.ndim != 2:
        _fail(f"{path} in {name}: lora_A {a.shape} and lora_B {b.shape} must both be matrices.")
    if a.shape[0] != b.shape[1] or a.shape[0] < 1:
        _fail(f"{path} in {name}: lora_A {a.shape} has rank {a.shape[0]} but lora_B {b.shape} has rank "
              f"{b.shape[1]}; A must be (r, d_in) and B (d_out, r) with the same r.")
    return a, b


def _check_targets(targets, paths: list[str]) -> None:
    """Each adapted path must be one PEFT's target_modules (a list) would select: equal, or ending in '.<t>'."""
    if targets is None or isinstance(targets, str):  # a regex or "all-linear": not evaluated here
        return
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        _fail(f"target_modules in {ADAPTER_CONFIG} must be a list of module names.")
    for path in paths:
        if not any(path == t or path.endswith("." + t) for t in targets):
            _fail(f"{ADAPTER_WEIGHTS} has an adapter for {path!r}, which target_modules {targets} does not select.")
