"""The Checkpoints page, driven headless through Streamlit's AppTest, and its pure helpers (lab_ui/uploads.py).

AppTest in this Streamlit simulates `st.file_uploader` (`at.file_uploader(key=...).upload(name, bytes)`), so
uploads go through the page itself. The bytes a download button offers are read back from the media file
manager AppTest creates for each run (recorded by the `media` fixture), so the tests check the very files a
browser would save.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import streamlit.testing.v1.app_test as app_test_module  # noqa: E402
from safetensors.numpy import load as st_load  # noqa: E402
from safetensors.numpy import save as st_save  # noqa: E402
from streamlit.runtime.media_file_manager import MediaFileManager  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from lab_ui import limits, uploads  # noqa: E402
from lora_core import CheckpointError, Run, preset_config  # noqa: E402
from lora_core import checkpoint as ck  # noqa: E402
from lora_core.models import lora_layers  # noqa: E402
from lora_core.tasks import build_task  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"
TIMEOUT = 120  # the first run of a page may build a task (data + frozen base) for the whole process


CHECKPOINTS, TRAIN = "views/checkpoints.py", "views/train.py"
SMALL = dict(syn_d_in=16, syn_d_out=12, syn_true_rank=3, rank=2, syn_samples=256, batch_size=32, steps=40)


# -- fixtures and helpers ---------------------------------------------------------------------------
class RecordingMediaFileManager(MediaFileManager):
    """AppTest makes one media file manager per run; keep the latest to read download bytes back."""

    latest: MediaFileManager | None = None

    def __init__(self, storage):
        super().__init__(storage)
        RecordingMediaFileManager.latest = self


@pytest.fixture
def media(monkeypatch):
    monkeypatch.setattr(app_test_module, "MediaFileManager", RecordingMediaFileManager)
    return RecordingMediaFileManager


def offered(at: AppTest, key: str) -> tuple[bytes, str]:
    """(bytes, file name) that the download button `key` hands the browser."""
    button = at.download_button(key=key)
    assert not button.proto.disabled, f"{key} is disabled"
    file_id = button.proto.url.rsplit("/", 1)[1]
    media_file = RecordingMediaFileManager.latest._storage.get_file(file_id)
    return bytes(media_file.content), media_file.filename


def open_checkpoints(**query) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    at.switch_page(CHECKPOINTS).run()
    assert not at.exception, at.exception
    return at


def train_steps(at: AppTest, n: int) -> None:
    """Press Step n times on the Train page, then come back to Checkpoints."""
    at.switch_page(TRAIN).run()
    for _ in range(n):
        next(b for b in at.button if b.label == "Step").click().run()
    at.switch_page(CHECKPOINTS).run()


def upload(at: AppTest, name: str, data: bytes, key: str = "ckpt_file") -> AppTest:
    return at.file_uploader(key=key).upload(name, data).run()


def frame(at: AppTest, *columns: str):
    """The table whose first columns are `columns` (st.dataframe has no key to find it by)."""
    for df in at.dataframe:
        value = df.value
        if list(value.columns[: len(columns)]) == list(columns):
            return value
    raise AssertionError(f"no table with columns {columns}; tables: {[list(d.value.columns) for d in at.dataframe]}")


def lab(at: AppTest):
    return at.session_state["lab"]


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def small_run(steps: int | None = None, preset: str = "synthetic", **overrides) -> Run:
    config = preset_config(preset, **({**SMALL, **overrides} if preset == "synthetic" else overrides))
    run = Run(config)
    run.step(config.steps if steps is None else steps)
    return run


def params_equal(a: Run, b: Run) -> bool:
    pa, pb = dict(a.model.named_parameters()), dict(b.model.named_parameters())
    return pa.keys() == pb.keys() and all(np.array_equal(pa[k].value, pb[k].value) for k in pa)


def rezip(data: bytes, **replace: bytes) -> bytes:
    """The same zip with some members' bytes replaced."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, replace.get(name, src.read(name)))
    return out.getvalue()


def one_sentence(text: str) -> bool:
    return "\n" not in text and "Traceback" not in text and text.endswith(".") and len(text) < 400


# == downloads =======================================================================================
def test_fresh_session_offers_the_four_files_and_says_train_first(media):
    at = open_checkpoints()
    assert texts(at.title) == ["Checkpoints"]
    assert any("train first" in i.value for i in at.info)
    names = {key: offered(at, f"dl_{key}")[1] for key in ("bundle", "adapter", "merged", "history")}
    assert names == {"bundle": "lora-lab-synthetic-r4-step0.zip", "adapter": "lora-lab-synthetic-r4-step0-adapter.zip",
                     "merged": "lora-lab-synthetic-r4-step0-merged.safetensors",
                     "history": "lora-lab-synthetic-r4-step0-history.csv"}
    data, _ = offered(at, "dl_bundle")
    assert ck.load_bundle(data).step_count == 0  # the untrained bundle is still a valid one
    assert all(b.proto.ignore_rerun for b in at.download_button)  # downloading does not rerun the page


def test_after_training_the_offered_files_are_the_session_run(media):
    at = open_checkpoints()
    train_steps(at, 3)
    assert not at.exception, at.exception
    run = lab(at).run
    assert run.step_count == 3 and not any("train first" in i.value for i in at.info)

    data, name = offered(at, "dl_bundle")
    assert name == "lora-lab-synthetic-r4-step3.zip"
    loaded = ck.load_bundle(data)
    assert loaded.step_count == run.step_count and params_equal(loaded, run)
    assert loaded.history.to_csv() == run.history.to_csv()

    adapter = ck.read_adapter(offered(at, "dl_adapter")[0])
    for path, layer in lora_layers(run.model):
        a, b = adapter.tensors[path]
        assert np.array_equal(a, layer.lora_A.value) and np.array_equal(b, layer.lora_B.value)
    merged = st_load(offered(at, "dl_merged")[0])
    assert np.allclose(merged["fc1.weight"], run.model.fc1.weight.value + run.model.fc1.delta_weight())
    assert offered(at, "dl_history")[0].decode() == run.history.to_csv()

    # a rerun serves the cached bytes: nothing is serialised again
    before = at.session_state["ckpt_downloads"][id(run)]["files"]["bundle"]
    at.run()
    assert at.session_state["ckpt_downloads"][id(run)]["files"]["bundle"] is before


def test_full_finetuning_has_no_adapter_to_download(media, tmp_path, monkeypatch):
    at = open_checkpoints(method="full")
    button = at.download_button(key="dl_adapter")
    assert button.proto.disabled
    assert any("No adapter" in c.value for c in at.caption)
    assert offered(at, "dl_bundle")[1] == "lora-lab-synthetic-full-step0.zip"
    assert ck.load_bundle(offered(at, "dl_bundle")[0]).config.method == "full"
    snippet = next(c.value for c in at.code if "load_file" in c.value)
    pytest.importorskip("torch")  # last: without torch, the rest of this test has run already
    data, name = offered(at, "dl_merged")
    (tmp_path / name).write_bytes(data)
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "snippet", "exec"), {})  # noqa: S102 - our own code block: the merged weights load


def test_earlier_runs_stay_downloadable(media):
    at = open_checkpoints()
    train_steps(at, 2)
    trained = lab(at).run
    at.number_input(key="cfg_rank").set_value(2).run()  # new settings: the trained run becomes an earlier run
    assert not at.exception, at.exception
    assert lab(at).previous[0] is trained
    data, name = offered(at, "dl_previous_0")
    assert name == "lora-lab-synthetic-r4-step2.zip"
    assert params_equal(ck.load_bundle(data), trained)
    assert len(at.session_state["ckpt_downloads"]) == 2  # the current run and the earlier one, nothing else


def test_the_peft_snippet_is_accurate(media, tmp_path, monkeypatch):
    """Run the page's own snippet on the page's own files: PEFT loads the adapter and gives our outputs."""
    pytest.importorskip("peft")
    torch = pytest.importorskip("torch")
    at = open_checkpoints(preset="digits-rotated")
    train_steps(at, 3)
    run = lab(at).run
    for key in ("dl_bundle", "dl_adapter"):
        data, name = offered(at, key)
        (tmp_path / name).write_bytes(data)
    snippet = next(c.value for c in at.code if "PeftModel.from_pretrained" in c.value)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(snippet, "snippet", "exec"), namespace)  # noqa: S102 - our own code block
    model = namespace["model"].eval()
    x = run.task.x_val[:32]
    with torch.no_grad():
        theirs = model(torch.from_numpy(np.array(x, dtype=np.float32))).numpy()
    run.model.eval()
    ours = run.model.forward(x)
    run.model.train()
    assert np.allclose(theirs, ours, rtol=1e-4, atol=1e-5 * np.abs(ours).max())


# == uploads: a run bundle ===========================================================================
def test_a_bundle_upload_shows_its_config_and_resume_makes_it_the_session_run(media):
    uploaded = small_run(steps=25, seed=3)
    at = open_checkpoints()
    upload(at, "mine.zip", ck.save_bundle(uploaded))
    assert not at.exception, at.exception
    assert not at.error
    assert any("LoRA Lab run bundle" in s.value for s in at.success)
    settings = frame(at, "setting", "value")
    table = dict(zip(settings["setting"], settings["value"]))
    assert table["modality"] == "synthetic" and table["steps"] == "25 of 40" and table["status"] == "running"
    assert table["what trains"].startswith("LoRA r=2, alpha=8") and table["optimizer"] == "adam, lr=0.01"
    tensors = frame(at, "tensor", "shape")
    assert list(tensors["tensor"]) == ["fc1.weight", "fc1.lora_A", "fc1.lora_B"]
    assert list(tensors["shape"]) == ["12 × 16", "2 × 16", "12 × 2"]
    assert {m.label for m in at.metric} >= {"Final train loss", "Final val loss"}
    spectra = at.get("plotly_chart")
    assert spectra and "fc1" in spectra[0].proto.spec

    at.button(key="ckpt_evaluate").click().run()
    scores = frame(at, "model", "val loss")
    assert list(scores["model"]) == ["frozen base (before adaptation)", "uploaded model"]
    assert float(scores["val loss"][1]) < float(scores["val loss"][0])

    compare = frame(at, "setting", "uploaded", "current")
    rows = dict(zip(compare["setting"], zip(compare["uploaded"], compare["current"])))
    assert rows["rank"] == ("2", "4") and rows["steps"] == ("25 of 40", "0 of 500")

    at.button(key="ckpt_resume").click().run()
    assert not at.exception, at.exception
    assert texts(at.title) == ["Train (live)"]  # switched to the Train page
    run = lab(at).run
    assert run.config == uploaded.config == at.session_state["config"]
    assert run.step_count == 25 and params_equal(run, uploaded)
    at.run()  # the sidebar now shows the run's settings, so the run stays the session's run
    assert lab(at).run is run
    run.step(1)  # and it continues exactly as the original would have
    uploaded.step(1)
    assert params_equal(run, uploaded)


@pytest.mark.parametrize("preset", ["digits-rotated", "text", "emoji-attention", "seed"])
def test_resume_round_trips_through_the_sidebar(preset):
    """After resuming, the sidebar's widgets give back exactly the run's config, so the run stays current."""
    uploaded = Run(preset_config(preset, steps=20, lr=0.02, seed=7))
    uploaded.step(2)
    at = open_checkpoints()
    upload(at, f"{preset}.zip", ck.save_bundle(uploaded))
    at.button(key="ckpt_resume").click().run()
    assert not at.exception, at.exception
    run = lab(at).run
    at.switch_page(CHECKPOINTS).run()
    assert not at.exception, at.exception
    assert lab(at).run is run and at.session_state["config"] == uploaded.config
    assert not lab(at).previous  # nothing was replaced: the untrained default run is not kept


@pytest.mark.parametrize("modality", ["image", "text", "multimodal"])
def test_other_modalities_offer_their_files(modality, media):
    at = open_checkpoints(modality=modality)
    train_steps(at, 1)
    assert not at.exception, at.exception
    run = lab(at).run
    data, name = offered(at, "dl_bundle")
    assert name.startswith(f"lora-lab-{modality}-r") and name.endswith("-step1.zip")
    assert params_equal(ck.load_bundle(data, task=run.task), run)
    assert any("PeftModel.from_pretrained" in c.value for c in at.code)


def test_resume_keeps_the_trained_run_as_an_earlier_run(media):
    at = open_checkpoints()
    train_steps(at, 2)
    trained = lab(at).run
    upload(at, "other.zip", ck.save_bundle(small_run(steps=5)))
    at.button(key="ckpt_resume").click().run()
    assert lab(at).previous[0] is trained


def test_a_bundle_the_sidebar_cannot_show_is_not_resumable():
    at = open_checkpoints()
    upload(at, "cli.zip", ck.save_bundle(small_run(steps=2, syn_samples=300)))  # e.g. made with the CLI
    assert not at.exception and not at.error
    assert at.button(key="ckpt_resume").proto.disabled
    assert any("syn_samples" in c.value and "not resumed" in c.value for c in at.caption)
    at.button(key="ckpt_evaluate").click().run()  # it can still be evaluated
    assert len(frame(at, "model", "val loss")) == 2


# == uploads: PEFT adapters ==========================================================================
def test_a_matching_adapter_evaluates_and_merges_on_the_current_base(media):
    source = Run(preset_config("synthetic", steps=60)).run()
    at = open_checkpoints()  # the default synthetic settings: the same task (data and base) as `source`
    upload(at, "adapter.zip", ck.adapter_zip(source))
    assert not at.exception and not at.error, (at.exception, texts(at.error))
    assert any("PEFT LoRA adapter" in s.value for s in at.success)
    settings = frame(at, "setting", "value")
    assert dict(zip(settings["setting"], settings["value"]))["target modules"] == "fc1"
    assert list(frame(at, "tensor", "shape")["tensor"]) == [
        "base_model.model.fc1.lora_A.weight", "base_model.model.fc1.lora_B.weight"]

    at.button(key="ckpt_evaluate_adapter").click().run()
    scores = frame(at, "model", "val loss")
    assert list(scores["model"])[:2] == ["frozen base (before adaptation)", "frozen base + uploaded adapter"]
    assert float(scores["val loss"][1]) == pytest.approx(source.evaluate()["loss"], rel=1e-3)  # 4 digits shown

    merged, name = offered(at, "dl_merged_adapter")
    assert name == "lora-lab-synthetic-merged-adapter.safetensors"
    expected = st_load(ck.merged_weights(source))
    assert np.allclose(st_load(merged)["fc1.weight"], expected["fc1.weight"], atol=1e-6)


def test_an_adapter_for_another_model_says_which_layer_differs():
    image = Run(preset_config("digits-rotated", steps=10))
    at = open_checkpoints()
    upload(at, "image-adapter.zip", ck.adapter_zip(image))
    assert not at.exception and not at.error
    warning = texts(at.warning)
    assert len(warning) == 1 and "'fc2'" in warning[0] and one_sentence(warning[0])
    assert not [b for b in at.button if b.key == "ckpt_evaluate_adapter"]


def test_a_bare_adapter_asks_for_its_config_then_reads(media):
    files = ck.adapter_files(small_run(steps=5))
    at = open_checkpoints()
    upload(at, "adapter_model.safetensors", files["adapter_model.safetensors"])
    assert not at.exception and not at.error
    assert any("adapter_config.json" in i.value for i in at.info)
    upload(at, "adapter_config.json", files["adapter_config.json"], key="ckpt_config_file")
    assert not at.exception and not at.error
    assert any("PEFT LoRA adapter" in s.value for s in at.success)


# == bad uploads: one sentence, never a traceback, and the page keeps working ========================
def _bad_uploads() -> dict[str, tuple[str, bytes, str]]:
    run = small_run(steps=3)
    bundle = ck.save_bundle(run)
    pickled = io.BytesIO()
    with zipfile.ZipFile(pickled, "w") as zf:
        zf.writestr("adapter_config.json", ck.adapter_files(run)["adapter_config.json"])
        zf.writestr("adapter_model.bin", b"\x80\x04\x95" + b"cos\nsystem\n")  # a pickle header: never opened
    huge = io.BytesIO()
    with zipfile.ZipFile(huge, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("lora_lab.json", b"{}")
        zf.writestr("model.safetensors", bytes(80 * 2 ** 20))  # 80 MB of zeros, ~80 KB compressed
    model = st_load(zipfile.ZipFile(io.BytesIO(bundle)).read("model.safetensors"))
    model["fc1.weight"] = np.zeros((5, 16), dtype=np.float32)
    wrong_shape = rezip(bundle, **{"model.safetensors": st_save(model, {"format": "np"})})
    info = json.loads(zipfile.ZipFile(io.BytesIO(bundle)).read("lora_lab.json"))
    info["config"] = {**info["config"], "modality": "image", "img_hidden": 100_000}
    oversized = rezip(bundle, **{"lora_lab.json": json.dumps(info).encode()})
    return {  # name: (file name, bytes, words the sentence must contain)
        "random bytes": ("random.zip", np.random.default_rng(0).bytes(4000), "not a valid zip"),
        "truncated zip": ("cut.zip", bundle[: len(bundle) // 2], "not a valid zip"),
        "zip with a pickle": ("pickle.zip", pickled.getvalue(), "pickle"),
        "huge member": ("huge.zip", huge.getvalue(), "64 MB"),
        "wrong shape": ("shape.zip", wrong_shape, "shape"),
        "model too large for the server": ("big.zip", oversized, "img_hidden=100000"),
        "weights, not an adapter": ("merged.safetensors", ck.merged_weights(run), "no LoRA adapter"),
        "random .safetensors": ("x.safetensors", np.random.default_rng(1).bytes(300), "safetensors"),
    }


BAD = _bad_uploads()


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_upload_gets_one_sentence_and_the_page_keeps_working(case, media):
    name, data, words = BAD[case]
    at = open_checkpoints()
    upload(at, name, data)
    assert not at.exception, at.exception
    errors = texts(at.error)
    assert len(errors) == 1 and one_sentence(errors[0]) and words in errors[0], errors
    assert not at.success
    at.run()  # and the session goes on: downloads still work
    assert not at.exception
    assert ck.load_bundle(offered(at, "dl_bundle")[0]).step_count == 0


def test_an_unexpected_failure_is_one_general_sentence(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("Traceback (most recent call last):\n  File 'x.py', line 1")

    monkeypatch.setattr(uploads, "read_upload", broken)
    at = open_checkpoints()
    upload(at, "any.zip", b"PK\x03\x04whatever")
    assert not at.exception
    assert texts(at.error) == [uploads.UNREADABLE]


def test_only_the_latest_upload_is_kept():
    at = open_checkpoints()
    upload(at, "a.zip", ck.save_bundle(small_run(steps=2)))
    first = at.session_state["ckpt_loaded"]["key"]
    at.file_uploader(key="ckpt_file").set_value(("b.zip", ck.save_bundle(small_run(steps=4)),
                                                 "application/zip")).run()
    assert at.session_state["ckpt_loaded"]["key"] != first
    assert at.session_state["ckpt_loaded"]["upload"].run.step_count == 4
    at.run()  # a rerun does not read the file again
    assert at.session_state["ckpt_loaded"]["upload"].run.step_count == 4
    at.file_uploader(key="ckpt_file").clear().run()
    assert "ckpt_loaded" not in at.session_state


# == the pure helpers ================================================================================
def test_file_stem_names_the_modality_rank_and_step():
    assert uploads.file_stem(preset_config("synthetic"), 500) == "lora-lab-synthetic-r4-step500"
    assert uploads.file_stem(preset_config("text"), 12) == "lora-lab-text-r8-step12"
    assert uploads.file_stem(preset_config("digits-rotated", method="head"), 0) == "lora-lab-image-head-step0"


def test_read_upload_tells_bundles_and_adapters_apart():
    run = small_run(steps=4)
    bundle = uploads.read_upload("run.zip", ck.save_bundle(run))
    assert bundle.kind == "bundle" and bundle.run.step_count == 4 and params_equal(bundle.run, run)
    assert [layer["path"] for layer in bundle.summary["layers"]] == ["fc1"]
    adapter = uploads.read_upload("a.zip", ck.adapter_zip(run))
    assert adapter.kind == "adapter" and adapter.adapter.rank == 2
    files = ck.adapter_files(run)
    with pytest.raises(uploads.NeedsAdapterConfig):
        uploads.read_upload("adapter_model.safetensors", files["adapter_model.safetensors"])
    bare = uploads.read_upload("adapter_model.safetensors", files["adapter_model.safetensors"],
                               adapter_config=files["adapter_config.json"])
    assert bare.summary["layers"][0]["singular_values"] == adapter.summary["layers"][0]["singular_values"]
    task_calls = []
    uploads.read_upload("run.zip", ck.save_bundle(run), task_for=lambda c: task_calls.append(c) or build_task(c))
    assert task_calls == [run.config]  # the page passes its shared, cached tasks


@pytest.mark.parametrize("preset", ["synthetic", "synthetic-low-rank", "digits-rotated", "mnist-to-fashion", "text",
                                    "emoji", "emoji-attention", "seed"])
def test_every_preset_can_be_resumed(preset):
    assert limits.sidebar_problem(preset_config(preset)) is None
    assert limits.size_problem(preset_config(preset)) is None


@pytest.mark.parametrize("overrides, words", [
    (dict(modality="image", img_hidden=100), "img_hidden"),
    (dict(syn_samples=3000), "syn_samples"),
    (dict(steps=50_000), "steps"),
    (dict(img_dataset="fashion", img_shift="rotate", modality="image"), "img_dataset"),
    (dict(seed=2 ** 31 + 5), "seed"),
])
def test_resume_problem_names_what_the_sidebar_cannot_show(overrides, words):
    problem = limits.sidebar_problem(preset_config("synthetic", **overrides))
    assert problem and words in problem and one_sentence(problem)


def test_resume_problem_ignores_settings_the_run_does_not_use():
    assert limits.sidebar_problem(preset_config("synthetic", img_hidden=100, txt_hidden=1000)) is None
    assert limits.sidebar_problem(preset_config("synthetic", method="full", alpha=4096.0)) is None


def test_adapter_run_puts_the_adapter_on_the_base_and_names_mismatches():
    source = small_run(steps=None)
    adapter = ck.read_adapter(ck.adapter_zip(source))
    config = preset_config("synthetic", **{**SMALL, "rank": 3, "alpha": 1.0, "init": "pissa"})
    adapted = uploads.adapter_run(adapter, config, source.task)
    assert adapted.config.rank == 2 and adapted.config.alpha == source.config.alpha  # the adapter's own r, alpha
    x = source.task.x_val[:20]
    assert np.allclose(adapted.model.forward(x), source.model.forward(x), atol=1e-5)

    other = Run(preset_config("synthetic", **{**SMALL, "syn_d_in": 8, "syn_samples": 256}))
    with pytest.raises(CheckpointError, match=r"fc1 maps 8 → 12") as error:
        uploads.adapter_run(adapter, other.config, other.task)
    assert one_sentence(str(error.value))
    image = Run(preset_config("digits-rotated", steps=10))
    # a missing layer is named before any shape: fc1 differs too, but fc2 is the clearer sentence
    with pytest.raises(CheckpointError, match="'fc2' that the current synthetic model does not have"):
        uploads.adapter_run(ck.read_adapter(ck.adapter_zip(image)), source.config, source.task)


def test_compare_rows_show_each_difference_once():
    a, b = small_run(steps=3), small_run(steps=0, rank=3, lr=0.02)
    rows = uploads.compare_rows(a, b)
    labels = [r["setting"] for r in rows]
    assert len(labels) == len(set(labels))
    assert labels[:2] == ["rank", "lr"] and "steps" in labels and "final val loss" in labels
    image = small_run(steps=0, preset="digits-rotated")
    labels = [r["setting"] for r in uploads.compare_rows(a, image)]
    assert "modality" in labels and not any(label.startswith(("txt_", "mm_")) for label in labels)


def test_tensor_rows_for_a_full_finetuning_bundle():
    run = small_run(steps=2, method="full")
    rows = uploads.tensor_rows(uploads.read_upload("full.zip", ck.save_bundle(run)))
    assert rows == [{"tensor": "fc1.weight", "shape": "12 × 16", "dtype": "float32", "role": "trained"}]
