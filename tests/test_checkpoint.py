"""Checkpoints: PEFT adapter layout, merged weights, bundles that round-trip and resume bit for bit, hostile uploads.

The forward passes here are written from the saved files alone (never through lora_core's layers), so they
check the files' meaning, not just that we can read back what we wrote.
"""
import functools
import io
import json
import math
import zipfile

import numpy as np
import pytest
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from lora_core import CheckpointError, Run, preset_config
from lora_core import checkpoint as ck
from lora_core.models import lora_layers

SMALL = dict(steps=40, syn_d_in=16, syn_d_out=12, syn_true_rank=3, rank=2, syn_samples=256, batch_size=32)

# Every field of PEFT 0.21's LoraConfig (with PeftConfig's): PEFT warns about any other key.
PEFT_LORA_FIELDS = {
    "peft_type", "task_type", "base_model_name_or_path", "revision", "inference_mode", "auto_mapping",
    "peft_version", "r", "target_modules", "exclude_modules", "lora_alpha", "lora_dropout", "fan_in_fan_out",
    "bias", "use_rslora", "modules_to_save", "init_lora_weights", "layers_to_transform", "layers_pattern",
    "rank_pattern", "alpha_pattern", "megatron_config", "megatron_core", "trainable_token_indices", "loftq_config",
    "eva_config", "corda_config", "use_dora", "use_qalora", "qalora_group_size", "layer_replication",
    "runtime_config", "lora_bias", "target_parameters", "alora_invocation_tokens", "arrow_config",
    "ensure_weight_tying"}
WRITTEN_KEYS = {"peft_type", "task_type", "r", "lora_alpha", "target_modules", "use_rslora", "lora_dropout", "bias",
                "init_lora_weights", "fan_in_fan_out", "modules_to_save", "base_model_name_or_path",
                "inference_mode", "revision", "rank_pattern", "alpha_pattern", "layers_to_transform",
                "layers_pattern", "use_dora"}


def small_run(steps_done=None, **overrides) -> Run:
    run = Run(preset_config("synthetic", **{**SMALL, **overrides}))
    run.step(run.config.steps if steps_done is None else steps_done)
    return run


@pytest.fixture(scope="module")
def run64():
    return small_run(dtype="float64")


@pytest.fixture(scope="module")
def run32():
    return small_run(steps_done=25)


# -- helpers written for the tests, independent of lora_core --------------------------------------
def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def make_zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def st_metadata(data: bytes) -> dict:
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + n]).get("__metadata__")


def st_dtypes(data: bytes) -> set[str]:
    n = int.from_bytes(data[:8], "little")
    return {v["dtype"] for k, v in json.loads(data[8:8 + n]).items() if k != "__metadata__"}


def lora_forward(x, base: dict, adapter: dict, config: dict, path: str):
    """y = x W^T (+ b) + scale (x A^T) B^T for one layer, from file contents only."""
    w = base[f"{path}.weight"].astype(np.float64)
    a = adapter[f"base_model.model.{path}.lora_A.weight"].astype(np.float64)
    b = adapter[f"base_model.model.{path}.lora_B.weight"].astype(np.float64)
    r = config["r"]
    scale = config["lora_alpha"] / (math.sqrt(r) if config["use_rslora"] else r)
    y = x @ w.T + scale * ((x @ a.T) @ b.T)
    return y + base[f"{path}.bias"] if f"{path}.bias" in base else y


def assert_history_equal(h1, h2, columns=("step", "train_loss", "lr", "grad_norm", "val_loss", "val_metric")):
    for name in columns:
        assert np.array_equal(h1.array(name), h2.array(name), equal_nan=True), name


def assert_same_params(m1, m2):
    p1, p2 = dict(m1.named_parameters()), dict(m2.named_parameters())
    assert list(p1) == list(p2)
    for name in p1:
        assert p1[name].value.dtype == p2[name].value.dtype, name
        assert np.array_equal(p1[name].value, p2[name].value), name


# -- PEFT adapter -------------------------------------------------------------------------------------
def test_adapter_layout(run32):
    files = ck.adapter_files(run32)
    assert set(files) == {"adapter_config.json", "adapter_model.safetensors"}
    config = json.loads(files["adapter_config.json"])
    assert set(config) <= PEFT_LORA_FIELDS and set(config) == WRITTEN_KEYS
    assert config["peft_type"] == "LORA" and config["r"] == 2 and config["lora_alpha"] == run32.config.alpha
    assert config["target_modules"] == ["fc1"] and config["init_lora_weights"] is True
    assert config["inference_mode"] is True and config["bias"] == "none" and config["use_dora"] is False
    weights = files["adapter_model.safetensors"]
    assert st_metadata(weights) == {"format": "pt"} and st_dtypes(weights) == {"F32"}
    tensors = st_load(weights)
    assert set(tensors) == {"base_model.model.fc1.lora_A.weight", "base_model.model.fc1.lora_B.weight"}
    layer = dict(lora_layers(run32.model))["fc1"]
    assert tensors["base_model.model.fc1.lora_A.weight"].shape == (2, 16)  # (r, d_in)
    assert tensors["base_model.model.fc1.lora_B.weight"].shape == (12, 2)  # (d_out, r)
    assert np.array_equal(tensors["base_model.model.fc1.lora_A.weight"], layer.lora_A.value)
    assert np.array_equal(tensors["base_model.model.fc1.lora_B.weight"], layer.lora_B.value)
    assert unzip(ck.adapter_zip(run32)) == files
    assert ck.adapter_zip(run32) == ck.adapter_zip(run32)


@pytest.mark.parametrize("init, expected", [("gaussian", "gaussian"), ("pissa", True)])
def test_adapter_init_names(init, expected):
    config = json.loads(ck.adapter_files(small_run(steps_done=3, init=init))["adapter_config.json"])
    assert config["init_lora_weights"] == expected  # pissa: PEFT would redo PiSSA on the residual base


@pytest.mark.parametrize("overrides", [dict(dtype="float64"), dict(dtype="float64", use_rslora=True, rank=3),
                                       dict(dtype="float64", init="pissa", syn_base="random")])
def test_independent_forward_from_files(overrides):
    run = small_run(steps_done=30, **overrides)
    bundle = unzip(ck.save_bundle(run))
    base = st_load(bundle["model.safetensors"])
    adapter = st_load(bundle["adapter/adapter_model.safetensors"])
    config = json.loads(bundle["adapter/adapter_config.json"])
    x = run.task.x_val
    expected = run.model.forward(x)
    # the adapter file is float32 (as PEFT's): equal to float32 rounding, relative to the outputs' size
    assert np.allclose(lora_forward(x, base, adapter, config, "fc1"), expected, rtol=1e-6,
                       atol=1e-6 * np.abs(expected).max())
    # the bundle's own float64 factors, read with the adapter's key names and scale: equal to float64 rounding
    exact = {f"base_model.model.fc1.lora_{k}.weight": base[f"fc1.lora_{k}"] for k in "AB"}
    assert np.allclose(lora_forward(x, base, exact, config, "fc1"), expected, rtol=1e-12, atol=1e-12)


def test_independent_forward_seed_toy_two_branches():
    run = Run(preset_config("seed", steps=40)).run()  # float64, one adapter per modality
    bundle = unzip(ck.save_bundle(run))
    base, adapter = st_load(bundle["model.safetensors"]), st_load(bundle["adapter/adapter_model.safetensors"])
    config = json.loads(bundle["adapter/adapter_config.json"])
    assert config["target_modules"] == ["text.proj", "image.proj"]
    x_text, x_image = run.task.x_val
    y = (lora_forward(x_text, base, adapter, config, "text.proj")
         + lora_forward(x_image, base, adapter, config, "image.proj"))
    expected = run.model.forward(run.task.x_val)
    assert np.allclose(y, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


# -- merged weights -----------------------------------------------------------------------------------
def test_merged_weights(run64):
    before = run64.model.state_dict()
    data = ck.merged_weights(run64)
    assert st_metadata(data) == {"format": "pt"} and st_dtypes(data) == {"F32"}
    merged = st_load(data)
    assert set(merged) == {"fc1.weight"}
    layer = dict(lora_layers(run64.model))["fc1"]
    expected = before["fc1.weight"] + layer.scale * (before["fc1.lora_B"] @ before["fc1.lora_A"])
    assert np.allclose(merged["fc1.weight"], expected, rtol=1e-6, atol=1e-7)
    after = run64.model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before) and not layer.merged
    layer.merge()  # a model merged by the user gives the same file (the adapter is not added twice)
    try:
        assert np.allclose(st_load(ck.merged_weights(run64))["fc1.weight"], merged["fc1.weight"], rtol=1e-6)
        with pytest.raises(CheckpointError, match="merged"):
            ck.save_bundle(run64)
    finally:
        layer.unmerge()


def test_merged_weights_image_forward():
    run = Run(preset_config("digits-rotated", steps=5)).run()
    merged = st_load(ck.merged_weights(run))
    assert set(merged) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"}
    h = run.task.x_val.astype(np.float64)
    for i in (1, 2, 3):
        h = h @ merged[f"fc{i}.weight"].T.astype(np.float64) + merged[f"fc{i}.bias"]
        h = np.maximum(h, 0) if i < 3 else h
    run.model.eval()
    assert np.allclose(h, run.model.forward(run.task.x_val), rtol=1e-4, atol=1e-4)


def test_no_adapter_for_full_or_head():
    for method in ("full", "head"):
        run = small_run(steps_done=3, method=method)
        with pytest.raises(CheckpointError, match=f"no adapter: it was trained with method={method}"):
            ck.adapter_files(run)
        assert "adapter/adapter_config.json" not in unzip(ck.save_bundle(run))
        assert set(st_load(ck.merged_weights(run))) == {"fc1.weight"}
        resumed = ck.load_bundle(ck.save_bundle(run))
        assert_same_params(run.model, resumed.model)


# -- bundles ------------------------------------------------------------------------------------------
def test_bundle_contents(run32):
    files = unzip(ck.save_bundle(run32))
    assert sorted(files) == sorted(ck.BUNDLE_MEMBERS)
    info = json.loads(files["lora_lab.json"])
    assert info["format"] == "lora-lab-run" and info["format_version"] == 1
    assert info["config"] == run32.config.to_dict() and info["step_count"] == 25
    assert info["optimizer"]["optimizer"] == "Adam"
    assert set(st_load(files["model.safetensors"])) == {"fc1.weight", "fc1.lora_A", "fc1.lora_B"}
    assert set(st_load(files["optimizer.safetensors"])) == {"fc1.lora_A/exp_avg", "fc1.lora_A/exp_avg_sq",
                                                             "fc1.lora_B/exp_avg", "fc1.lora_B/exp_avg_sq"}
    assert files["history.csv"].decode() == run32.history.to_csv()


@pytest.mark.parametrize("preset, overrides", [("synthetic", dict(SMALL)), ("synthetic", dict(SMALL, dtype="float64")),
                                               ("seed", dict(steps=30))])
def test_bundle_round_trip_bit_for_bit(preset, overrides, tmp_path):
    run = Run(preset_config(preset, **overrides))
    run.step(17)
    data = ck.save_bundle(run)
    assert ck.save_bundle(run) == data
    path = tmp_path / "run.zip"
    path.write_bytes(data)
    for source, task in ((data, None), (str(path), run.task), (path, None)):
        loaded = ck.load_bundle(source, task=task)
        assert_same_params(run.model, loaded.model)
        a1, m1 = run.optimizer.state_dict()
        a2, m2 = loaded.optimizer.state_dict()
        assert m1 == m2 and sorted(a1) == sorted(a2)
        assert all(a1[k].dtype == a2[k].dtype and np.array_equal(a1[k], a2[k]) for k in a1)
        assert_history_equal(run.history, loaded.history)
        assert np.array_equal(run.history.array("time"), loaded.history.array("time"))
        assert (loaded.step_count, loaded.status, loaded.message, loaded.train_time) == (
            run.step_count, run.status, run.message, run.train_time)
        assert loaded.start_loss == run.start_loss
        assert ck.save_bundle(loaded) == data


def test_fresh_run_round_trip():
    run = Run(preset_config("synthetic", **SMALL))  # no step yet: start_loss is NaN, no optimizer state
    loaded = ck.load_bundle(ck.save_bundle(run))
    assert loaded.step_count == 0 and loaded.status == "ready" and math.isnan(loaded.start_loss)
    assert ck.save_bundle(loaded) == ck.save_bundle(run)


@pytest.mark.parametrize("overrides", [
    dict(optimizer="adam"),
    dict(optimizer="momentum", lr=0.02),
    dict(optimizer="adam", dropout=0.2),
    dict(optimizer="nesterov", lr=0.01, dropout=0.1, schedule="warmup_cosine", warmup_steps=5, loraplus_ratio=4.0),
    dict(optimizer="adamw", weight_decay=0.01, clip_norm=0.5, batch_size=48),  # a partial last batch per epoch
    dict(optimizer="rmsprop", lr=0.001, dtype="float64", method="full"),
])
def test_resume_equals_uninterrupted(overrides):
    config = preset_config("synthetic", **{**SMALL, "steps": 60, **overrides})
    straight = Run(config).run()
    first = Run(config, straight.task)
    first.step(25)
    resumed = ck.load_bundle(ck.save_bundle(first))
    del first  # nothing may be shared with the saved run
    resumed.run()
    assert resumed.status == straight.status == "done" and resumed.step_count == 60
    assert_history_equal(straight.history, resumed.history, columns=("step", "train_loss", "val_loss", "lr",
                                                                      "grad_norm", "val_metric"))
    assert_same_params(straight.model, resumed.model)


@pytest.mark.parametrize("preset", ["digits-rotated", "text", "emoji-attention"])
def test_resume_every_modality(preset):
    config = preset_config(preset, steps=12, eval_every=5)
    straight = Run(config).run()
    first = Run(config, straight.task)
    first.step(5)
    data = ck.save_bundle(first)
    resumed = ck.load_bundle(data, task=straight.task)
    resumed.run()
    assert_history_equal(straight.history, resumed.history)
    assert_same_params(straight.model, resumed.model)
    layers = [path for path, _ in lora_layers(straight.model)]
    assert [layer["path"] for layer in ck.inspect_bundle(data)["layers"]] == layers  # model order
    assert ck.read_adapter(data).target_modules == layers


def test_resume_seed_toy_full_batch():
    config = preset_config("seed", steps=50)
    straight = Run(config).run()
    first = Run(config)
    first.step(20)
    resumed = ck.load_bundle(ck.save_bundle(first), task=first.task)
    resumed.run()
    assert_history_equal(straight.history, resumed.history)
    assert_same_params(straight.model, resumed.model)


def test_diverged_run_round_trip():
    run = small_run(optimizer="sgd", lr=2.0)
    assert run.status == "diverged"
    data = ck.save_bundle(run)
    loaded = ck.load_bundle(data)
    assert (loaded.status, loaded.message, loaded.step_count) == (run.status, run.message, run.step_count)
    assert loaded.done and loaded.step(5) == [] and ck.save_bundle(loaded) == data


def test_done_run_stays_done():
    run = small_run()
    loaded = ck.load_bundle(ck.save_bundle(run))
    assert loaded.status == "done" and loaded.done and loaded.step(5) == []


# -- inspect -------------------------------------------------------------------------------------------
def test_inspect_bundle(run32):
    summary = ck.inspect_bundle(ck.save_bundle(run32))
    json.dumps(summary, allow_nan=False)
    assert summary["format"] == "lora-lab-run" and summary["step_count"] == 25
    assert summary["config"] == run32.config.to_dict() and summary["status"] == run32.status
    assert summary["final_train_loss"] == run32.history.last("train_loss")
    assert summary["final_val_loss"] == run32.history.last("val_loss")
    [layer] = summary["layers"]
    lora = dict(lora_layers(run32.model))["fc1"]
    assert layer["path"] == "fc1" and layer["A_shape"] == [2, 16] and layer["B_shape"] == [12, 2]
    full = np.linalg.svd(lora.delta_weight().astype(np.float64), compute_uv=False)
    assert np.allclose(layer["singular_values"], full[:2], rtol=1e-5)
    assert summary["tensors"]["model"] == {"count": 3, "bytes": 4 * (12 * 16 + 2 * 16 + 12 * 2)}
    assert summary["tensors"]["optimizer"]["count"] == 4
    adapter_summary = ck.inspect_bundle(ck.adapter_zip(run32))
    json.dumps(adapter_summary, allow_nan=False)
    assert adapter_summary["format"] == "peft-lora"
    assert np.allclose(adapter_summary["layers"][0]["singular_values"], layer["singular_values"])


def test_singular_values_from_factors():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 40)), rng.standard_normal((30, 3))
    assert np.allclose(ck.singular_values(a, b, 2.5), np.linalg.svd(2.5 * b @ a, compute_uv=False)[:3])


# -- read_adapter ---------------------------------------------------------------------------------------
def test_read_adapter_forms(run32):
    files = ck.adapter_files(run32)
    layer = dict(lora_layers(run32.model))["fc1"]
    forms = [ck.adapter_zip(run32),
             make_zip({f"my-adapter/{k}": v for k, v in files.items()} | {"my-adapter/README.md": b"# card"}),
             make_zip({"out/": b"", "out/a/": b""} | {f"out/a/{k}": v for k, v in files.items()}),
             ck.save_bundle(run32)]
    adapters = [ck.read_adapter(data) for data in forms]
    adapters.append(ck.read_adapter(files["adapter_model.safetensors"], json.loads(files["adapter_config.json"])))
    adapters.append(ck.read_adapter(files["adapter_model.safetensors"], files["adapter_config.json"].decode()))
    for adapter in adapters:
        assert adapter.rank == 2 and adapter.alpha == 8.0 and adapter.scale == layer.scale
        assert adapter.target_modules == ["fc1"] and adapter.config["peft_type"] == "LORA"
        a, b = adapter.tensors["fc1"]
        assert np.array_equal(a, layer.lora_A.value) and np.array_equal(b, layer.lora_B.value)
        assert np.allclose(adapter.delta_weight("fc1"), layer.delta_weight(), rtol=1e-5)


# -- bad inputs ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good(run32):
    return unzip(ck.save_bundle(run32))


def with_changes(files, changes: dict) -> bytes:
    """The bundle's members with some replaced (bytes) or removed (None), zipped again."""
    out = {**files, **changes}
    return make_zip({k: v for k, v in out.items() if v is not None})


def with_info(files, **changes) -> bytes:
    info = json.loads(files["lora_lab.json"])
    info.update(changes)
    return with_changes(files, {"lora_lab.json": json.dumps(info).encode()})


def with_model(files, edit) -> bytes:
    tensors = dict(st_load(files["model.safetensors"]))
    edit(tensors)
    return with_changes(files, {"model.safetensors": st_save(tensors)})


def nan_lora_b(t):
    t["fc1.lora_B"] = t["fc1.lora_B"].copy()
    t["fc1.lora_B"][0, 0] = np.nan


def crc_broken(data: bytes) -> bytes:
    """The bundle with one byte of history.csv's compressed data flipped: the central directory is intact."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo("history.csv")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 5
    return data[:start] + bytes([data[start] ^ 0xFF]) + data[start + 1:]


def lying_size(data: bytes, name: str, size: int) -> bytes:
    """The zip with `name`'s uncompressed size in the central directory set to `size` (nothing else changed)."""
    pos = 0
    while True:
        at = data.index(b"PK\x01\x02", pos)
        n = int.from_bytes(data[at + 28:at + 30], "little")
        if data[at + 46:at + 46 + n] == name.encode():
            return data[:at + 24] + size.to_bytes(4, "little") + data[at + 28:]
        pos = at + 4


@functools.cache
def zip64_many() -> bytes:
    """70,000 empty entries: zipfile writes a zip64 end record (more than 65,535 entries)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for i in range(70_000):
            zf.writestr(f"{i}", b"")
    return out.getvalue()


def zeros_bomb() -> bytes:
    """100 MB of zeros, deflated to ~0.5 MB: written in chunks, so the test stays memory-light."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("model.safetensors", "w", force_zip64=True) as f:
            chunk = bytes(2 ** 20)
            for _ in range(100):
                f.write(chunk)
    return out.getvalue()


BAD_BUNDLES = {
    "random bytes": (lambda g: np.random.default_rng(0).bytes(5000), "not a valid zip"),
    "empty": (lambda g: b"", "not a valid zip"),
    "truncated": (lambda g: make_zip(g)[:3000], "not a valid zip"),
    "corrupted data": (lambda g: crc_broken(make_zip(g)), "corrupted"),
    "path traversal": (lambda g: make_zip({**g, "../evil": b"x"}), "unsafe entry name '../evil'"),
    "absolute path": (lambda g: make_zip({**g, "/etc/passwd": b"x"}), "unsafe entry name"),
    "pickle": (lambda g: make_zip({**g, "model.pkl": b"\x80\x04K\x01."}), "unexpected file 'model.pkl'"),
    "extra folder": (lambda g: make_zip({**g, "other/x.txt": b"x"}), "unexpected file 'other/x.txt'"),
    "too many entries": (lambda g: make_zip({**g, **{f"x{i}": b"" for i in range(20)}}), "has 26 entries"),
    "many entries, zip64": (lambda g: zip64_many(), "has 70000 entries"),
    "missing member": (lambda g: with_changes(g, {"history.csv": None}), "lacks history.csv"),
    "lying size": (lambda g: lying_size(make_zip(g), "history.csv", 100 * 2 ** 20), "history.csv .* 100 MB"),
    "size too small": (lambda g: lying_size(make_zip(g), "history.csv", 10), "history.csv in the run bundle"),
    "zip bomb": (lambda g: zeros_bomb(), "model.safetensors .* 100 MB uncompressed; the limit is 64 MB"),
    "not json": (lambda g: with_changes(g, {"lora_lab.json": b"{not json"}), "lora_lab.json is not valid JSON"),
    "NaN in json": (lambda g: with_changes(g, {"lora_lab.json": b'{"format": NaN}'}), "not valid JSON"),
    "wrong format": (lambda g: with_info(g, format="something-else"), "does not describe a LoRA Lab run"),
    "wrong version": (lambda g: with_info(g, format_version=2), "format version 2; this LoRA Lab reads version 1"),
    "unknown key": (lambda g: with_info(g, extra=1), r"unknown keys \['extra'\]"),
    "missing key": (lambda g: make_zip({**g, "lora_lab.json": json.dumps({k: v for k, v in json.loads(
        g["lora_lab.json"]).items() if k != "message"}).encode()}), r"lacks the keys \['message'\]"),
    "unknown setting": (lambda g: with_info(g, config={**json.loads(g["lora_lab.json"])["config"], "colour": "red"}),
                        r"run config is not valid: unknown setting\(s\) \['colour'\]"),
    "bad setting": (lambda g: with_info(g, config={**json.loads(g["lora_lab.json"])["config"], "rank": 0}),
                    "run config is not valid: rank=0"),
    "step_count too big": (lambda g: with_info(g, step_count=41), "step_count=41 .* from 0 to steps=40"),
    "step_count not int": (lambda g: with_info(g, step_count="25"), "step_count='25'"),
    "bad status": (lambda g: with_info(g, status="flying"), "status='flying'"),
    "done too early": (lambda g: with_info(g, status="done"), "status='done' does not fit step_count=25"),
    "history too long": (lambda g: with_changes(g, {"history.csv": g["history.csv"] + b"\n" * 100}),
                         "history.csv has more lines than the bundle's 25 steps"),
    "history length": (lambda g: with_changes(g, {"history.csv": g["history.csv"].rsplit(b"\n", 2)[0] + b"\n"}),
                       "history.csv has 24 rows but the bundle records 25 steps"),
    "history garbage": (lambda g: with_changes(g, {"history.csv": b"a,b\n1,2\n"}), "must start with the header"),
    "wrong shape": (lambda g: with_model(g, lambda t: t.update({"fc1.lora_A": np.zeros((3, 16), np.float32)})),
                    r"fc1.lora_A in model.safetensors has shape \(3, 16\) but .* needs \(2, 16\)"),
    "missing tensor": (lambda g: with_model(g, lambda t: t.pop("fc1.lora_B")), r"missing \['fc1.lora_B'\]"),
    "extra tensor": (lambda g: with_model(g, lambda t: t.update({"fc2.weight": np.zeros((2, 2), np.float32)})),
                     r"unexpected \['fc2.weight'\]"),
    "NaN tensor": (lambda g: with_model(g, nan_lora_b), "fc1.lora_B in model.safetensors holds NaN"),
    "int64 tensor": (lambda g: with_model(g, lambda t: t.update({"fc1.lora_A": np.zeros((2, 16), np.int64)})),
                     "fc1.lora_A in model.safetensors has dtype int64; only float32 and float64"),
    "float16 tensor": (lambda g: with_model(g, lambda t: t.update({"fc1.lora_A": np.zeros((2, 16), np.float16)})),
                       "dtype float16"),
    "float64 in float32 run": (lambda g: with_model(g, lambda t: t.update({"fc1.lora_A": t["fc1.lora_A"].astype(
        np.float64)})), "fc1.lora_A in model.safetensors is float64 but the run's config says dtype=float32"),
    "not safetensors": (lambda g: with_changes(g, {"model.safetensors": b"\x80\x04K\x01."}), "model.safetensors"),
    "safetensors bad offsets": (lambda g: with_changes(g, {"model.safetensors": g["model.safetensors"][:-8]}),
                                "not a valid safetensors file"),
    "optimizer kind": (lambda g: with_info(g, optimizer={**json.loads(g["lora_lab.json"])["optimizer"],
                                                         "optimizer": "SGD"}), "holds 'SGD' optimizer state"),
    "optimizer lr": (lambda g: with_info(g, optimizer=json.loads(
        g["lora_lab.json"].replace(b'"lr": 0.01', b'"lr": 0.5').decode())["optimizer"]),
                     "optimizer state in lora_lab.json has lr=0.5 .* but the run config gives lr=0.01"),
    "optimizer steps": (lambda g: with_info(g, optimizer={**json.loads(g["lora_lab.json"])["optimizer"],
                                                          "steps": 24}), "records 24 steps but the run made 25"),
    "optimizer param steps": (lambda g: with_info(g, optimizer={**json.loads(g["lora_lab.json"])["optimizer"],
                                                                "param_steps": {"fc1.lora_A": 10 ** 400,
                                                                                "fc1.lora_B": 25}}),
                              "more steps than the run's 25"),
    "huge number": (lambda g: with_info(g, config={**json.loads(g["lora_lab.json"])["config"], "lr": 10 ** 400}),
                    "lr=1000.* is not a finite number"),
    "huge train_time": (lambda g: with_info(g, train_time=10 ** 400), "train_time=1000"),
    "optimizer missing state": (lambda g: with_changes(g, {"optimizer.safetensors": st_save(
        {k: v for k, v in st_load(g["optimizer.safetensors"]).items() if not k.endswith("exp_avg_sq")})}),
                                "is missing"),
    "adapter disagrees": (lambda g: with_changes(g, {"adapter/adapter_model.safetensors": ck.adapter_files(
        small_run(steps_done=2))["adapter_model.safetensors"]}), "adapter/ files do not match"),
    "half an adapter": (lambda g: with_changes(g, {"adapter/adapter_config.json": None}), "only one of the two"),
}


# inspect_bundle checks a bundle on its own, not against a freshly built model and optimizer: it may accept these
INSPECT_MAY_ACCEPT = {"wrong shape", "missing tensor", "extra tensor", "float64 in float32 run", "optimizer kind",
                      "optimizer lr", "optimizer missing state", "optimizer steps", "optimizer param steps"}


@pytest.mark.parametrize("case", list(BAD_BUNDLES))
def test_bad_bundles_are_refused(good, case):
    make, message = BAD_BUNDLES[case]
    data = make(good)
    with pytest.raises(CheckpointError, match=message):
        ck.load_bundle(data)
    if case not in INSPECT_MAY_ACCEPT:
        with pytest.raises(CheckpointError, match=message):
            ck.inspect_bundle(data)


def test_mutated_uploads_raise_only_checkpoint_errors(good):
    """Random byte changes, in a member (zipped again) or in the zip itself: a CheckpointError or a valid run."""
    rng = np.random.default_rng(7)
    names, whole = sorted(good), make_zip(good)
    for i in range(160):
        target = names[i % len(names)] if i % 2 else None
        data = bytearray(good[target] if target else whole)
        for _ in range(1 + i % 3):
            data[rng.integers(len(data))] = rng.integers(256)
        upload = make_zip({**good, target: bytes(data)}) if target else bytes(data)
        for read in (ck.load_bundle, ck.inspect_bundle, ck.read_adapter):
            try:
                read(upload)
            except CheckpointError:
                pass


def test_entry_count_is_read_before_zipfile_parses_entries():
    assert ck._entry_count(zip64_many()) == 70_000  # from the zip64 end record
    assert ck._entry_count(make_zip({"a": b"1", "b": b"2"})) == 2
    assert ck._entry_count(b"not a zip") is None


def test_bad_paths_and_types(tmp_path):
    with pytest.raises(CheckpointError, match="cannot be read"):
        ck.load_bundle(tmp_path / "missing.zip")
    with pytest.raises(CheckpointError, match="bytes or a file path"):
        ck.load_bundle(12)


def test_task_of_another_modality(run32):
    seed_run = Run(preset_config("seed", steps=5))
    with pytest.raises(CheckpointError, match="modality 'multimodal' but the bundle is a 'synthetic' run"):
        ck.load_bundle(ck.save_bundle(run32), task=seed_run.task)


def test_non_finite_run_is_not_saved():
    run = small_run(steps_done=2)
    layer = dict(lora_layers(run.model))["fc1"]
    layer.lora_B.value[0, 0] = np.inf
    for write in (ck.save_bundle, ck.adapter_files, ck.merged_weights):
        with pytest.raises(CheckpointError, match="NaN or infinite"):
            write(run)


def adapter_with(files, tensors=None, **config_changes) -> bytes:
    config = {**json.loads(files["adapter_config.json"]), **config_changes}
    weights = files["adapter_model.safetensors"] if tensors is None else st_save(tensors, metadata={"format": "pt"})
    return make_zip({"adapter_config.json": json.dumps(config).encode(), "adapter_model.safetensors": weights})


A_KEY, B_KEY = "base_model.model.fc1.lora_A.weight", "base_model.model.fc1.lora_B.weight"
ZA, ZB = np.zeros((2, 16), np.float32), np.zeros((12, 2), np.float32)
BAD_ADAPTERS = {
    "A/B ranks differ": (dict(tensors={A_KEY: ZA, B_KEY: np.zeros((12, 3), np.float32)}),
                         r"lora_A \(2, 16\) has rank 2 but lora_B \(12, 3\) has rank 3"),
    "rank differs from r": (dict(tensors={A_KEY: ZA, B_KEY: ZB}, r=4),
                            "fc1 has rank 2 but adapter_config.json says r=4"),
    "missing B": (dict(tensors={A_KEY: ZA}), "lora_B missing"),
    "bad key": (dict(tensors={A_KEY: ZA, B_KEY: ZB, "base_model.model.fc1.weight": ZB}),
                "has a tensor 'base_model.model.fc1.weight'"),
    "NaN": (dict(tensors={A_KEY: ZA + np.nan, B_KEY: ZB}), "holds NaN"),
    "int tensor": (dict(tensors={A_KEY: ZA.astype(np.int64), B_KEY: ZB}), "dtype int64"),
    "3-d tensor": (dict(tensors={A_KEY: np.zeros((2, 16, 1), np.float32), B_KEY: ZB}), "must both be matrices"),
    "not lora": (dict(peft_type="IA3"), "peft_type='IA3'"),
    "dora": (dict(use_dora=True), "use_dora=True .* not supported"),
    "rank pattern": (dict(rank_pattern={"fc1": 4}), "rank_pattern"),
    "bad alpha": (dict(lora_alpha=-1), "lora_alpha=-1"),
    "bad r": (dict(r="2"), "r='2'"),
    "untargeted": (dict(target_modules=["fc2"]), "which target_modules"),
}


@pytest.mark.parametrize("case", list(BAD_ADAPTERS))
def test_bad_adapters_are_refused(run32, case):
    changes, message = BAD_ADAPTERS[case]
    data = adapter_with(ck.adapter_files(run32), **changes)
    with pytest.raises(CheckpointError, match=message):
        ck.read_adapter(data)


def test_bad_adapter_uploads(run32):
    files = ck.adapter_files(run32)
    with pytest.raises(CheckpointError, match="needs its adapter_config.json"):
        ck.read_adapter(files["adapter_model.safetensors"])
    with pytest.raises(CheckpointError, match="not a PEFT LoRA adapter"):
        ck.read_adapter(make_zip({"adapter_config.json": files["adapter_config.json"]}))
    with pytest.raises(CheckpointError, match="unexpected file 'adapter.pkl'"):
        ck.read_adapter(make_zip({**files, "adapter.pkl": b"\x80\x04K\x01."}))
    with pytest.raises(CheckpointError, match="unsafe entry name"):
        ck.read_adapter(make_zip({f"../{k}": v for k, v in files.items()}))
    with pytest.raises(CheckpointError, match="not valid JSON"):
        ck.read_adapter(files["adapter_model.safetensors"], "{oops")
    with pytest.raises(CheckpointError, match="has no adapter"):
        ck.read_adapter(ck.save_bundle(small_run(steps_done=2, method="full")))


# -- real PEFT (optional: runs only where torch and peft are installed) -----------------------------
def test_peft_loads_the_adapter_and_gives_the_same_outputs(tmp_path):
    peft = pytest.importorskip("peft")  # first: without it, torch is not imported at all
    torch = pytest.importorskip("torch")
    import warnings

    run = Run(preset_config("digits-rotated", steps=10, init="pissa"))  # pissa: the residual base must be kept
    run.run()
    bundle = unzip(ck.save_bundle(run))
    zipfile.ZipFile(io.BytesIO(ck.adapter_zip(run))).extractall(tmp_path)
    layers = {"fc1": torch.nn.Linear(64, 64), "act1": torch.nn.ReLU(), "fc2": torch.nn.Linear(64, 64),
              "act2": torch.nn.ReLU(), "fc3": torch.nn.Linear(64, 10)}
    model = torch.nn.Sequential()
    for name, layer in layers.items():
        model.add_module(name, layer)
    base = {k: torch.from_numpy(np.array(v)) for k, v in st_load(bundle["model.safetensors"]).items()
            if ".lora_" not in k}
    model.load_state_dict(base, strict=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        adapted = peft.PeftModel.from_pretrained(model, str(tmp_path)).eval()
    assert not [w for w in caught if "LoraConfig" in str(w.message)]  # no unknown keys
    run.model.eval()
    with torch.no_grad():
        theirs = adapted(torch.from_numpy(np.array(run.task.x_val))).numpy()
    ours = run.model.forward(run.task.x_val)
    assert np.allclose(theirs, ours, rtol=1e-4, atol=1e-5 * np.abs(ours).max())
