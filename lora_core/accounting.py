"""Parameter and memory accounting: what LoRA trains, what it saves.

Two scales:
- the model in hand: `layer_table` (one row per Linear / LoRALinear / Embedding)
  and `summary` (totals, bytes of weights, gradients and optimizer state);
- real architectures (`ARCHITECTURES`: GPT-2 small, LLaMA-2 7B, GPT-3 175B):
  `savings` says how many parameters a LoRA of rank r on chosen target modules
  trains, what share of the model that is, and the memory it saves.

A LoRA adapter on a (d_out x d_in) weight trains A (r x d_in) and B (d_out x r),
that is r * (d_in + d_out) numbers, against d_in * d_out for the full matrix.
"""
from __future__ import annotations

import math
import types
from dataclasses import dataclass, field
from typing import Mapping, NamedTuple, Sequence

import numpy as np

from .errors import check
from .layers import Embedding, Linear, LoRALinear
from .module import Module

# Numbers of optimizer state kept per trainable parameter (PyTorch semantics):
# momentum / Nesterov keep a velocity, RMSprop a running mean of squares, Adam
# and AdamW both moments. Defined here, not imported from optim.py, so the
# accounting stays usable without the optimizers (and they are written apart).
OPTIMIZER_STATE_PER_PARAM: dict[str, int] = {
    "sgd": 0,
    "momentum": 1,
    "nesterov": 1,
    "rmsprop": 1,
    "adam": 2,
    "adamw": 2,
}

# LoRA parameter roles (see module.ROLES): everything else is the base model.
_LORA_ROLES = ("lora_A", "lora_B")


def lora_param_count(d_in: int, d_out: int, r: int) -> int:
    """Parameters of a rank-r adapter on a (d_out x d_in) weight: A (r x d_in) + B (d_out x r)."""
    return int(r) * (int(d_in) + int(d_out))


def full_param_count(d_in: int, d_out: int, bias: bool = False) -> int:
    """Parameters full fine-tuning trains in one (d_out x d_in) linear layer, with its bias if any."""
    return int(d_in) * int(d_out) + (int(d_out) if bias else 0)


def _ratio(num: float, den: float) -> float:
    """num / den, with inf for a zero denominator (nothing trainable = infinite reduction)."""
    return num / den if den else math.inf


def _state_per_param(optimizer: str) -> int:
    name = optimizer.lower() if isinstance(optimizer, str) else optimizer
    check(name in OPTIMIZER_STATE_PER_PARAM, "optimizer", optimizer, f"one of {tuple(OPTIMIZER_STATE_PER_PARAM)}")
    return OPTIMIZER_STATE_PER_PARAM[name]


def _check_bytes(field_name: str, value) -> None:
    check(isinstance(value, int) and not isinstance(value, bool) and value >= 1, field_name, value,
          "a whole number of bytes >= 1 (e.g. 4 for float32, 2 for float16/bfloat16)")


# ---------------------------------------------------------------------------
# The model in hand
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerCount:
    """Parameter counts of one layer of a model."""

    path: str
    """Module path in the model, e.g. "fc1", "text.fc1", "attn.q"."""
    kind: str
    """"lora" (LoRALinear), "linear" (Linear) or "embedding" (Embedding)."""
    d_in: int
    """Input features; for an embedding, the number of rows (vocabulary)."""
    d_out: int
    """Output features; for an embedding, the vector size."""
    rank: int
    """LoRA rank r, 0 for a layer without an adapter."""
    frozen: int
    """Parameters of this layer the optimizer does not change."""
    trainable: int
    """Parameters of this layer the optimizer changes."""
    full: int
    """Parameters full fine-tuning of this layer trains: d_in*d_out (+ d_out bias); never the adapter."""
    percent_of_full: float
    """trainable / full * 100."""
    reduction: float
    """full / trainable: how many times fewer parameters are trained; inf when nothing is trainable."""


def _layer_row(path: str, module: Module) -> LayerCount | None:
    if isinstance(module, LoRALinear):
        kind, d_in, d_out, rank = "lora", module.d_in, module.d_out, module.r
        full = full_param_count(d_in, d_out, bias=module.bias is not None)
    elif isinstance(module, Linear):
        kind, d_in, d_out, rank = "linear", module.d_in, module.d_out, 0
        full = full_param_count(d_in, d_out, bias=module.bias is not None)
    elif isinstance(module, Embedding):
        kind, d_in, d_out, rank = "embedding", module.num, module.dim, 0
        full = module.num * module.dim
    else:
        return None
    # The layer's own params only (a LoRALinear registers its base's weight/bias itself).
    params = [p for p in module._params.values() if p is not None]
    trainable = sum(p.size for p in params if p.trainable)
    frozen = sum(p.size for p in params if not p.trainable)
    return LayerCount(path=path, kind=kind, d_in=d_in, d_out=d_out, rank=rank, frozen=frozen,
                      trainable=trainable, full=full, percent_of_full=100.0 * trainable / full if full else 0.0,
                      reduction=_ratio(full, trainable))


def layer_table(model: Module) -> list[LayerCount]:
    """One row per Linear, LoRALinear and Embedding of `model`, in `named_modules()` order.

    Other modules (activations, attention containers, Sequential) hold no
    params of their own here and get no row. A weight shared by two layers is
    counted in each row; `summary` counts it once.
    """
    check(isinstance(model, Module), "model", type(model).__name__, "a lora_core Module")
    rows = (_layer_row(path, m) for path, m in model.named_modules())
    return [row for row in rows if row is not None]


@dataclass(frozen=True)
class ModelSummary:
    """Parameter counts and memory of a model, for LoRA as set up and for full fine-tuning."""

    total_params: int
    """Every parameter of the model, adapters included (shared params once)."""
    trainable_params: int
    """Parameters the optimizer changes."""
    frozen_params: int
    """Parameters held fixed."""
    percent_trainable: float
    """trainable_params / total_params * 100."""
    lora_params: int
    """Parameters in LoRA tensors (lora_A, lora_B), trainable or not."""
    full_finetune_params: int
    """What full fine-tuning would train: every param except the LoRA tensors (the base weights)."""
    reduction: float
    """full_finetune_params / trainable_params; inf when nothing is trainable."""
    weight_bytes: int
    """Memory of all params: total_params x dtype_bytes."""
    trainable_bytes: int
    """Memory of the trainable params: trainable_params x dtype_bytes."""
    gradient_bytes: int
    """Memory of the gradients (trainable params only): trainable_params x dtype_bytes."""
    optimizer_state_bytes: int
    """Optimizer state: trainable_params x states per param x dtype_bytes."""
    full_ft_optimizer_state_bytes: int
    """The same for full fine-tuning: full_finetune_params x states per param x dtype_bytes."""
    adapter_bytes_fp32: int
    """Size of the LoRA tensors alone in float32: 4 x lora_params (file headers not counted)."""
    adapter_bytes_fp16: int
    """Size of the LoRA tensors alone in float16: 2 x lora_params (file headers not counted)."""
    optimizer: str
    """Optimizer the state memory was computed for."""
    dtype_bytes: int
    """Bytes per number used for weights, gradients and optimizer state."""


def summary(model: Module, optimizer: str = "adam", dtype_bytes: int = 4) -> ModelSummary:
    """Totals and memory of `model` as it is set up now (which params are trainable).

    `dtype_bytes` is the storage assumed for weights, gradients and optimizer
    state (4 = float32), not the arrays' NumPy dtype: the point is the memory
    the same model would take in a real training setup.
    """
    check(isinstance(model, Module), "model", type(model).__name__, "a lora_core Module")
    states = _state_per_param(optimizer)
    _check_bytes("dtype_bytes", dtype_bytes)
    params = [p for _, p in model.named_parameters()]  # each shared param once
    total = sum(p.size for p in params)
    trainable = sum(p.size for p in params if p.trainable)
    lora = sum(p.size for p in params if p.role in _LORA_ROLES)
    full_ft = total - lora
    return ModelSummary(
        total_params=total,
        trainable_params=trainable,
        frozen_params=total - trainable,
        percent_trainable=100.0 * trainable / total if total else 0.0,
        lora_params=lora,
        full_finetune_params=full_ft,
        reduction=_ratio(full_ft, trainable),
        weight_bytes=total * dtype_bytes,
        trainable_bytes=trainable * dtype_bytes,
        gradient_bytes=trainable * dtype_bytes,
        optimizer_state_bytes=trainable * states * dtype_bytes,
        full_ft_optimizer_state_bytes=full_ft * states * dtype_bytes,
        adapter_bytes_fp32=4 * lora,
        adapter_bytes_fp16=2 * lora,
        optimizer=optimizer.lower(),
        dtype_bytes=dtype_bytes,
    )


# ---------------------------------------------------------------------------
# Real architectures
# ---------------------------------------------------------------------------

TARGETS = ("q", "k", "v", "o", "mlp")


class Matrix(NamedTuple):
    """One weight matrix of a transformer block, as LoRA sees it: y = x W^T, W (d_out x d_in)."""

    d_in: int
    d_out: int
    peft_name: str  # the name PEFT's `target_modules` would match (GPT-3: the LoRA paper's symbol)


@dataclass(frozen=True)
class Architecture:
    """A real transformer, described by the weight shapes LoRA can target."""

    name: str
    """Key in ARCHITECTURES, e.g. "llama2-7b"."""
    label: str
    """Human-readable name for the UI."""
    d_model: int
    """Hidden size."""
    n_layers: int
    """Number of transformer blocks."""
    d_mlp: int
    """Inner size of the MLP."""
    vocab: int
    """Vocabulary size (rows of the token embedding)."""
    n_params_reported: int
    """Total parameters as the source reports them; the denominator of "% of the model"."""
    modules: Mapping[str, tuple[Matrix, ...]] = field(hash=False)
    """Target key ("q","k","v","o","mlp") -> the matrices of ONE block that key covers."""
    n_positions: int = 0
    """Rows of a learned position embedding (0 with rotary embeddings)."""
    tied_embeddings: bool = True
    """Whether the output head reuses the token embedding (else an untied vocab x d_model head)."""
    bias: bool = False
    """Whether the linear layers have biases."""
    norm_params: int = 0
    """Parameters of one norm layer (LayerNorm 2*d, RMSNorm d); two per block plus a final one."""
    source: str = ""
    """Where the numbers come from."""

    def target_params(self, targets: Sequence[str]) -> int:
        """Weights (no biases) of the targeted matrices over all blocks: what LoRA adapts."""
        return self.n_layers * sum(m.d_in * m.d_out for key in targets for m in self.modules[key])

    def lora_params(self, targets: Sequence[str], rank: int) -> int:
        """Parameters of a rank-`rank` LoRA on every targeted matrix of every block."""
        return self.n_layers * sum(lora_param_count(m.d_in, m.d_out, rank) for key in targets
                                   for m in self.modules[key])

    @property
    def n_params_computed(self) -> int:
        """Total parameters from the shapes: embeddings, blocks (matrices, biases, norms), final norm, head.

        Exact for GPT-2 small (124,439,808) and LLaMA-2 7B (6,738,415,616, as
        HF's `num_parameters()`); for GPT-3 it gives 174.6B where the paper
        reports 175.0B, which is why percentages use `n_params_reported`.
        """
        block = sum(m.d_in * m.d_out + (m.d_out if self.bias else 0)
                    for mats in self.modules.values() for m in mats)
        block += 2 * self.norm_params
        embeddings = self.vocab * self.d_model * (1 if self.tied_embeddings else 2)
        embeddings += self.n_positions * self.d_model
        return embeddings + self.n_layers * block + self.norm_params


def _arch(name, label, d, n_layers, d_mlp, vocab, reported, modules, **extra) -> Architecture:
    return Architecture(name=name, label=label, d_model=d, n_layers=n_layers, d_mlp=d_mlp, vocab=vocab,
                        n_params_reported=reported, modules=types.MappingProxyType(modules), **extra)


# Sources:
# - GPT-2 small: Radford et al. (2019), "Language Models are Unsupervised
#   Multitask Learners" (Table 2, d_model 768, 12 layers; the paper says 117M)
#   and the Hugging Face `gpt2` config (n_embd 768, n_layer 12, n_inner None ->
#   4*768, vocab_size 50257, n_positions 1024, tied lm_head). HF's model counts
#   124,439,808 params, the "124M" used everywhere since.
# - LLaMA-2 7B: Touvron et al. (2023), "Llama 2" (Table 1: 7B), and the HF
#   `meta-llama/Llama-2-7b-hf` config (hidden 4096, 32 layers, intermediate
#   11008, vocab 32000, RMSNorm, no biases, untied lm_head): 6,738,415,616 params.
# - GPT-3 175B: Brown et al. (2020), "Language Models are Few-Shot Learners",
#   Table 2.1 (n_params 175.0B, n_layers 96, d_model 12288, d_ff = 4*d_model,
#   context 2048; the GPT-2 tokenizer, vocab 50257).
# - LoRA on GPT-3: Hu et al. (2021), "LoRA", Section 7 / Table 4: W_q and W_v at
#   r=8 train 37.7M params = 96 layers * 2 matrices * 8 * (12288 + 12288)
#   = 37,748,736, about 0.0216% of 175B (4,636x fewer than full fine-tuning).
_GPT2 = 768
_LLAMA, _LLAMA_MLP = 4096, 11008
_GPT3 = 12288

ARCHITECTURES: dict[str, Architecture] = {
    "gpt2-small": _arch(
        "gpt2-small", "GPT-2 small (124M)", _GPT2, 12, 4 * _GPT2, 50257, 124_439_808,
        {
            # HF's GPT-2 has ONE fused qkv matrix `c_attn` (768 -> 2304), so PEFT can
            # only target q, k and v together. We describe them as three 768x768
            # slices so q/k/v can be chosen apart, as the LoRA paper does. Count
            # check: PEFT's LoRA on c_attn trains r*(768+2304) per block, which is
            # the same as q+v slices (2*r*(768+768)) but less than q+k+v slices.
            "q": (Matrix(_GPT2, _GPT2, "c_attn[q]"),),
            "k": (Matrix(_GPT2, _GPT2, "c_attn[k]"),),
            "v": (Matrix(_GPT2, _GPT2, "c_attn[v]"),),
            "o": (Matrix(_GPT2, _GPT2, "attn.c_proj"),),  # plain "c_proj" would also match mlp.c_proj
            "mlp": (Matrix(_GPT2, 4 * _GPT2, "mlp.c_fc"), Matrix(4 * _GPT2, _GPT2, "mlp.c_proj")),
        },
        n_positions=1024, tied_embeddings=True, bias=True, norm_params=2 * _GPT2,
        source="GPT-2 paper (Radford et al., 2019); Hugging Face gpt2 config",
    ),
    "llama2-7b": _arch(
        "llama2-7b", "LLaMA-2 7B", _LLAMA, 32, _LLAMA_MLP, 32000, 6_738_415_616,
        {
            "q": (Matrix(_LLAMA, _LLAMA, "q_proj"),),
            "k": (Matrix(_LLAMA, _LLAMA, "k_proj"),),
            "v": (Matrix(_LLAMA, _LLAMA, "v_proj"),),
            "o": (Matrix(_LLAMA, _LLAMA, "o_proj"),),
            # SwiGLU MLP: gate and up (d -> d_mlp), down (d_mlp -> d)
            "mlp": (Matrix(_LLAMA, _LLAMA_MLP, "gate_proj"), Matrix(_LLAMA, _LLAMA_MLP, "up_proj"),
                    Matrix(_LLAMA_MLP, _LLAMA, "down_proj")),
        },
        n_positions=0, tied_embeddings=False, bias=False, norm_params=_LLAMA,
        source="Llama 2 paper (Touvron et al., 2023), Table 1; Hugging Face meta-llama/Llama-2-7b-hf config",
    ),
    "gpt3-175b": _arch(
        "gpt3-175b", "GPT-3 175B", _GPT3, 96, 4 * _GPT3, 50257, 175_000_000_000,
        {
            # GPT-3's weights are not public, so there is no PEFT module name: these
            # are the LoRA paper's symbols (it does not name the MLP matrices).
            "q": (Matrix(_GPT3, _GPT3, "W_q"),),
            "k": (Matrix(_GPT3, _GPT3, "W_k"),),
            "v": (Matrix(_GPT3, _GPT3, "W_v"),),
            "o": (Matrix(_GPT3, _GPT3, "W_o"),),
            "mlp": (Matrix(_GPT3, 4 * _GPT3, "W_up"), Matrix(4 * _GPT3, _GPT3, "W_down")),
        },
        n_positions=2048, tied_embeddings=True, bias=True, norm_params=2 * _GPT3,
        source="GPT-3 paper (Brown et al., 2020), Table 2.1; LoRA paper (Hu et al., 2021), Table 4",
    ),
}


@dataclass(frozen=True)
class Savings:
    """LoRA vs full fine-tuning on a real architecture."""

    arch: str
    """Architecture key."""
    targets: tuple[str, ...]
    """Target modules, in the order of TARGETS."""
    rank: int
    """LoRA rank r."""
    optimizer: str
    """Optimizer the state memory is computed for."""
    lora_params: int
    """Trainable parameters of the adapters."""
    total_params: int
    """The model's reported parameter count."""
    percent: float
    """lora_params / total_params * 100."""
    reduction: float
    """full_ft_params / lora_params: how many times fewer parameters LoRA trains."""
    full_ft_params: int
    """Parameters full fine-tuning trains: the whole model (= total_params)."""
    target_params: int
    """Weights of the targeted matrices (the part LoRA adapts)."""
    lora_trainable_target_fraction: float
    """lora_params / target_params: the adapter's size relative to the matrices it adapts."""
    adapter_bytes_fp16: int
    """Adapter tensors in float16/bfloat16: 2 x lora_params (file header not counted)."""
    adapter_bytes_fp32: int
    """Adapter tensors in float32: 4 x lora_params (file header not counted)."""
    model_bytes: int
    """Memory of the model's weights, needed by both methods: total_params x weight_bytes."""
    lora_gradient_bytes: int
    """Gradients of the adapter: lora_params x weight_bytes."""
    full_ft_gradient_bytes: int
    """Gradients of full fine-tuning: total_params x weight_bytes."""
    lora_optimizer_bytes: int
    """Optimizer state for LoRA: lora_params x states per param x state_bytes."""
    full_ft_optimizer_bytes: int
    """Optimizer state for full fine-tuning: total_params x states per param x state_bytes."""


def _parse_targets(targets) -> tuple[str, ...]:
    if isinstance(targets, str):
        items = [t.strip().lower() for t in targets.split(",") if t.strip()]
    else:
        try:
            items = [str(t).strip().lower() for t in targets]
        except TypeError:
            items = None
    allowed = f'a non-empty selection of {TARGETS}, as a list or a comma string like "q,v"'
    check(bool(items) and all(t in TARGETS for t in items), "targets", targets, allowed)
    return tuple(t for t in TARGETS if t in items)  # canonical order, duplicates dropped


def savings(arch_name: str, targets, rank: int, *, optimizer: str = "adam", weight_bytes: int = 2,
            state_bytes: int = 4) -> Savings:
    """Parameters and memory of a rank-`rank` LoRA on `targets` of a real architecture.

    `targets` is a sequence or a comma string of "q", "k", "v", "o", "mlp".
    Percentages use the model's reported total (`n_params_reported`), the
    figure the papers quote. Memory assumes weights and gradients in
    `weight_bytes` (2 = fp16/bf16) and optimizer state in `state_bytes`
    (4 = fp32, as mixed-precision training keeps it).
    """
    check(arch_name in ARCHITECTURES, "arch", arch_name, f"one of {tuple(ARCHITECTURES)}")
    arch = ARCHITECTURES[arch_name]
    chosen = _parse_targets(targets)
    limit = min(min(m.d_in, m.d_out) for key in chosen for m in arch.modules[key])
    check(isinstance(rank, (int, np.integer)) and not isinstance(rank, bool) and 1 <= rank <= limit, "rank", rank,
          f"a whole number from 1 to {limit} (the smallest dimension of the targeted matrices)")
    rank = int(rank)
    states = _state_per_param(optimizer)
    _check_bytes("weight_bytes", weight_bytes)
    _check_bytes("state_bytes", state_bytes)

    lora = arch.lora_params(chosen, rank)
    total = arch.n_params_reported
    target = arch.target_params(chosen)
    return Savings(
        arch=arch_name,
        targets=chosen,
        rank=rank,
        optimizer=optimizer.lower(),
        lora_params=lora,
        total_params=total,
        percent=100.0 * lora / total,
        reduction=total / lora,
        full_ft_params=total,
        target_params=target,
        lora_trainable_target_fraction=lora / target,
        adapter_bytes_fp16=2 * lora,
        adapter_bytes_fp32=4 * lora,
        model_bytes=total * weight_bytes,
        lora_gradient_bytes=lora * weight_bytes,
        full_ft_gradient_bytes=total * weight_bytes,
        lora_optimizer_bytes=lora * states * state_bytes,
        full_ft_optimizer_bytes=total * states * state_bytes,
    )
