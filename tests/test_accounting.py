"""Parameter accounting: hand-computed counts on a tiny model, and the published
numbers for real architectures (the LoRA paper's 37.7M on GPT-3, PEFT's 4,194,304
on LLaMA-2 7B)."""
import math

import numpy as np
import pytest

from lora_core.accounting import (
    ARCHITECTURES,
    OPTIMIZER_STATE_PER_PARAM,
    TARGETS,
    full_param_count,
    layer_table,
    lora_param_count,
    savings,
    summary,
)
from lora_core.errors import ConfigError
from lora_core.layers import Embedding, Linear, LoRALinear, ReLU, Sequential
from lora_core.module import Module


# -- the formulas -------------------------------------------------------------

def test_formulas():
    assert lora_param_count(768, 768, 8) == 8 * 1536
    assert full_param_count(6, 8) == 48
    assert full_param_count(6, 8, bias=True) == 56
    assert OPTIMIZER_STATE_PER_PARAM == {"sgd": 0, "momentum": 1, "nesterov": 1, "rmsprop": 1, "adam": 2, "adamw": 2}


# -- a tiny model by hand -----------------------------------------------------

class Tiny(Module):
    """emb (10x6, frozen) -> fc1 6->8 with LoRA r=2 -> relu -> head 8->3 (trainable), plus a nested block."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(0)
        self.emb = Embedding(10, 6, rng=rng, trainable=False)
        self.fc1 = LoRALinear(Linear(6, 8, rng=rng), r=2, alpha=4.0, rng=rng)
        self.act = ReLU()
        self.text = Sequential(fc1=Linear(8, 5, bias=False, rng=rng, trainable=False))
        self.head = Linear(5, 3, rng=rng)


def test_layer_table_rows():
    rows = {row.path: row for row in layer_table(Tiny())}
    assert list(rows) == ["emb", "fc1", "text.fc1", "head"]  # no rows for ReLU, Sequential or the model

    emb = rows["emb"]
    assert (emb.kind, emb.d_in, emb.d_out, emb.rank) == ("embedding", 10, 6, 0)
    assert (emb.frozen, emb.trainable, emb.full) == (60, 0, 60)
    assert emb.percent_of_full == 0.0 and emb.reduction == math.inf

    lora = rows["fc1"]
    assert (lora.kind, lora.d_in, lora.d_out, lora.rank) == ("lora", 6, 8, 2)
    assert lora.trainable == 2 * (6 + 8) == 28
    assert lora.frozen == 6 * 8 + 8  # base weight and bias
    assert lora.full == 56
    assert lora.percent_of_full == pytest.approx(28 / 56 * 100)
    assert lora.reduction == pytest.approx(2.0)

    nested = rows["text.fc1"]
    assert (nested.kind, nested.frozen, nested.trainable, nested.full) == ("linear", 40, 0, 40)

    head = rows["head"]
    assert (head.kind, head.rank, head.frozen, head.trainable, head.full) == ("linear", 0, 0, 18, 18)
    assert head.percent_of_full == 100.0 and head.reduction == 1.0


def test_summary_counts_and_bytes():
    s = summary(Tiny())
    trainable = 28 + 18  # the adapter and the head
    frozen = 60 + 56 + 40
    assert s.trainable_params == trainable
    assert s.frozen_params == frozen
    assert s.total_params == trainable + frozen
    assert s.percent_trainable == pytest.approx(100 * trainable / (trainable + frozen))
    assert s.lora_params == 28
    assert s.full_finetune_params == 60 + 56 + 40 + 18  # everything but the adapter
    assert s.reduction == pytest.approx((60 + 56 + 40 + 18) / trainable)
    assert s.weight_bytes == 4 * (trainable + frozen)
    assert s.trainable_bytes == s.gradient_bytes == 4 * trainable
    assert s.optimizer_state_bytes == 2 * 4 * trainable  # Adam: two moments in float32
    assert s.full_ft_optimizer_state_bytes == 2 * 4 * s.full_finetune_params
    assert (s.adapter_bytes_fp32, s.adapter_bytes_fp16) == (4 * 28, 2 * 28)


def test_summary_optimizers_and_dtype():
    model = Tiny()
    assert summary(model, optimizer="sgd").optimizer_state_bytes == 0
    assert summary(model, optimizer="momentum", dtype_bytes=2).optimizer_state_bytes == 2 * 46
    assert summary(model, optimizer="AdamW").optimizer_state_bytes == 8 * 46
    with pytest.raises(ConfigError, match="optimizer"):
        summary(model, optimizer="adagrad")
    with pytest.raises(ConfigError, match="dtype_bytes"):
        summary(model, dtype_bytes=0)


def test_summary_lora_only_model():
    # The common LoRA setup: one frozen linear with an adapter, nothing else trainable.
    model = Sequential(fc=LoRALinear(Linear(32, 16, bias=False), r=4, alpha=8.0))
    s = summary(model)
    assert s.trainable_params == lora_param_count(32, 16, 4) == 192
    assert s.full_finetune_params == 32 * 16
    assert s.reduction == pytest.approx(512 / 192)
    assert layer_table(model)[0].trainable == 192


def test_summary_counts_shared_params_once():
    model = Sequential(a=Linear(4, 4, bias=False), b=Linear(4, 4, bias=False))
    model.b.weight = model.a.weight  # tied
    assert summary(model).total_params == 16
    assert [row.trainable for row in layer_table(model)] == [16, 16]  # each layer shows its own weight


def test_nothing_trainable():
    model = Sequential(fc=Linear(3, 2, trainable=False))
    s = summary(model)
    assert s.trainable_params == 0 and s.reduction == math.inf and s.optimizer_state_bytes == 0


# -- real architectures ---------------------------------------------------------

def test_gpt3_qv_r8_is_the_lora_papers_37_7M():
    s = savings("gpt3-175b", "q,v", 8)
    assert s.lora_params == 96 * 2 * 8 * (12288 + 12288) == 37_748_736
    assert s.percent == pytest.approx(0.0216, abs=5e-5)
    assert s.total_params == s.full_ft_params == 175_000_000_000
    assert s.reduction == pytest.approx(175e9 / 37_748_736)
    assert round(s.reduction) == 4636  # the paper's "10,000 times" is for smaller ranks (q,v at r=4: ~9,300x)


def test_gpt2_small_qv_r8():
    s = savings("gpt2-small", ["q", "v"], 8)
    assert s.lora_params == 12 * 2 * 8 * (768 + 768) == 294_912
    # same as PEFT's LoRA on GPT-2's fused c_attn (768 -> 2304): 12 * 8 * (768 + 2304)
    assert s.lora_params == 12 * lora_param_count(768, 2304, 8)


def test_llama2_7b_counts_match_peft():
    assert savings("llama2-7b", ("q", "v"), 8).lora_params == 4_194_304
    per_layer_attn = 4 * 8 * (4096 + 4096)
    per_layer_mlp = 2 * 8 * (4096 + 11008) + 8 * (11008 + 4096)  # gate, up, down
    assert per_layer_mlp == 3 * 8 * (4096 + 11008)
    every = savings("llama2-7b", "q,k,v,o,mlp", 8)
    assert every.lora_params == 32 * (per_layer_attn + per_layer_mlp) == 19_988_480
    assert savings("llama2-7b", "mlp", 8).lora_params == 32 * per_layer_mlp


def test_savings_bytes_and_fractions():
    s = savings("llama2-7b", "q,v", 8)
    assert s.adapter_bytes_fp16 == 2 * s.lora_params
    assert s.adapter_bytes_fp32 == 4 * s.lora_params
    assert s.lora_optimizer_bytes == s.lora_params * 2 * 4  # Adam, fp32 state
    assert s.full_ft_optimizer_bytes == s.total_params * 2 * 4
    assert s.model_bytes == 2 * s.total_params
    assert s.target_params == 32 * 2 * 4096 * 4096
    assert s.lora_trainable_target_fraction == pytest.approx(2 * 8 / 4096)
    assert savings("llama2-7b", "q,v", 8, optimizer="sgd").lora_optimizer_bytes == 0


def test_architecture_shapes_give_the_known_totals():
    assert ARCHITECTURES["gpt2-small"].n_params_computed == 124_439_808  # HF gpt2 num_parameters()
    assert ARCHITECTURES["llama2-7b"].n_params_computed == 6_738_415_616  # HF Llama-2-7b-hf
    gpt3 = ARCHITECTURES["gpt3-175b"]
    assert abs(gpt3.n_params_computed - gpt3.n_params_reported) / gpt3.n_params_reported < 0.01
    for arch in ARCHITECTURES.values():
        assert set(arch.modules) == set(TARGETS)
        mlp = arch.modules["mlp"]
        assert all((m.d_in, m.d_out) == (arch.d_model, arch.d_mlp) for m in mlp[:-1])  # up (and gate)
        assert (mlp[-1].d_in, mlp[-1].d_out) == (arch.d_mlp, arch.d_model)  # down
    names = [m.peft_name for key in TARGETS for m in ARCHITECTURES["llama2-7b"].modules[key]]
    assert names == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def test_targets_parsing():
    assert savings("gpt2-small", " V , q ", 4).targets == ("q", "v")
    assert savings("gpt2-small", ["v", "q", "q"], 4).targets == ("q", "v")


@pytest.mark.parametrize("kwargs, field", [
    (dict(arch_name="gpt5", targets="q", rank=8), "arch"),
    (dict(arch_name="gpt2-small", targets="", rank=8), "targets"),
    (dict(arch_name="gpt2-small", targets=[], rank=8), "targets"),
    (dict(arch_name="gpt2-small", targets="q,x", rank=8), "targets"),
    (dict(arch_name="gpt2-small", targets=None, rank=8), "targets"),
    (dict(arch_name="gpt2-small", targets="q", rank=0), "rank"),
    (dict(arch_name="gpt2-small", targets="q", rank=2.5), "rank"),
    (dict(arch_name="gpt2-small", targets="q", rank=True), "rank"),
    (dict(arch_name="gpt2-small", targets="q", rank=769), "rank"),
    (dict(arch_name="gpt2-small", targets="q", rank=8, optimizer="lbfgs"), "optimizer"),
    (dict(arch_name="gpt2-small", targets="q", rank=8, weight_bytes=0), "weight_bytes"),
])
def test_savings_refuses_bad_input(kwargs, field):
    with pytest.raises(ConfigError, match=rf"^{field}=") as info:
        savings(**kwargs)
    assert "must be" in str(info.value)


def test_error_messages_say_what_is_allowed():
    with pytest.raises(ConfigError) as info:
        savings("gpt5", "q", 8)
    assert all(name in str(info.value) for name in ARCHITECTURES)
    with pytest.raises(ConfigError, match="768"):
        savings("gpt2-small", "q", 1000)
    assert savings("gpt2-small", "q", 768).rank == 768  # the largest allowed rank
    assert savings("llama2-7b", "mlp", np.int64(4)).rank == 4
