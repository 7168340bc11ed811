"""Memory per GPU of a fine-tune: an estimate from the architecture, with its formulas.

Bytes per parameter (P parameters; AdamW keeps two moments per trainable parameter):

=============  ========  =====  =========  ====================================================
dtype          weights   grads  optimizer  meaning
=============  ========  =====  =========  ====================================================
float32        4         4      8          what the CPU runs
bfloat16       2         2      4          pure bf16: weights, grads and moments in bf16
mixed          4 (+2)    4      8          bf16 compute over fp32 master weights (accelerate's
                                           ``mixed_precision = "bf16"``); +2: the bf16 copy of
                                           the weights (plain) or of the gathered units (FSDP)
=============  ========  =====  =========  ====================================================

Modes: ``plain`` (one GPU holds everything), ``fsdp`` (weights, grads and moments sharded over
N GPUs; each GPU also holds the gathered parameters of the outer unit (embedding, head, final
norm: FSDP's root unit stays gathered through forward and backward), of two decoder layers (the
one computing and the one prefetched) and one layer's unsharded gradient; with CPU offload the
shards live in host memory) and ``lora`` (frozen base weights in the compute dtype, float32
adapters with their grads and moments: peft keeps adapters in float32).

Activations: the tensors autograd saves for the backward pass, per micro-batch of ``n_seqs``
strings padded to ``seq_len`` tokens (bos and eos included; the model sees ``seq_len - 1``
positions), counted per layer per token by reading the Hugging Face implementations (e = bytes
of the compute dtype, h hidden, q = heads x head_dim, kv = kv_heads x head_dim, i intermediate,
S = seq_len - 1)::

    GPT-NeoX  e (3h + (q + 2kv) + (q + kv) + 2q + 2i) + 8 + 4 heads + e S
              LN inputs/outputs, fused QKV, rotated q and k, attention output and its copy,
              MLP input and GELU output; 2 x (mean, rstd) in fp32; attention log-sum-exp;
              the padding mask as an additive bias, kept by each layer's attention
    Llama /   2 (4h + 4 + 2 e h) + e (q + 2kv + q + 4i) + 4 heads + e S
    Mistral   two RMSNorms (fp32 input, rstd, normed and scaled outputs), rotated q and k, v,
              attention output, gate, SiLU, up and product of the gated MLP

plus the outer tensors per token (final norm as above, 8 bytes of token id, 4V bytes of float32
log-probabilities). LoRA (adapters on every linear) adds 4r bytes per linear (the A output);
in bfloat16 each adapter also keeps a float32 copy of its input (peft casts it to the adapters'
dtype) while the frozen base no longer keeps the inputs that only its linears needed; a frozen
norm keeps no normed input, and nothing before the first layer needs a gradient
(:func:`lora_activation_bytes`, :func:`lora_outer_bytes`). With
activation checkpointing (one checkpoint per decoder layer) only each layer's input (e h) is
kept, and the backward pass recomputes one layer at a time: layers x e h + one layer's full
activations. The transient peak of the output head, tokens x V x (4 + 4, + e when e != 4)
bytes (float32 logits, their gradient, the compute-dtype logits), is an estimate: it is added
to the total but not checked against a measurement. tests/scale/test_plan.py checks the
weights, gradients and optimizer states exactly and the saved activations within 3% against
tiny models on the CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from grammarlab.errors import ConfigError
from grammarlab.scale.arch import Architecture

GiB = 2**30
DTYPES = ("float32", "bfloat16", "mixed")
MODES = ("plain", "fsdp", "lora")
USABLE = 0.9  # share of a GPU's memory a run may plan for: CUDA context, allocator slack, NCCL

# bytes per parameter: weights, grads, optimizer states, compute element (module docstring)
_BYTES = {"float32": (4, 4, 8, 4), "bfloat16": (2, 2, 4, 2), "mixed": (4, 4, 8, 2)}


@dataclass(frozen=True)
class Setup:
    """One way to train: mode, dtype, GPUs, micro-batch and options."""

    mode: str = "plain"  # plain | fsdp | lora
    dtype: str = "float32"  # float32 | bfloat16 | mixed
    gpus: int = 1  # FSDP shards over this many GPUs
    n_train: int = 64  # training strings: one full batch per epoch, split over the GPUs
    micro_batch: int | None = None  # strings per forward pass on one GPU; None: its whole share
    seq_len: int = 74  # tokens per string with bos and eos (the paper's strings: 64-72)
    lora_rank: int = 8
    checkpointing: bool = False  # activation checkpointing, one unit per decoder layer
    cpu_offload: bool = False  # FSDP: shards of weights, grads and moments in host memory

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        for name in ("gpus", "n_train", "lora_rank"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.micro_batch is not None and self.micro_batch < 1:
            raise ConfigError(f"micro_batch must be >= 1 or unset, got {self.micro_batch}")
        if self.seq_len < 2:
            raise ConfigError(f"seq_len must be >= 2 (bos and eos), got {self.seq_len}")
        if self.cpu_offload and self.mode != "fsdp":
            raise ConfigError("CPU offload is an FSDP option", hint="use mode fsdp")

    @property
    def n_seqs(self) -> int:
        """Strings in one forward pass on one GPU: the micro-batch, at most the GPU's share."""
        share = -(-self.n_train // self.gpus)
        return min(self.micro_batch or share, share)

    def describe(self) -> str:
        parts = {"plain": ["1 GPU"], "fsdp": [f"FSDP over {self.gpus} GPUs"],
                 "lora": [f"LoRA rank {self.lora_rank}"]}[self.mode]  # fmt: skip
        parts.append(self.dtype)
        if self.checkpointing:
            parts.append("activation checkpointing")
        if self.cpu_offload:
            parts.append("CPU offload")
        parts.append(f"{self.n_seqs} strings x {self.seq_len} tokens per pass")
        return ", ".join(parts)


@dataclass(frozen=True)
class Estimate:
    """Bytes per GPU, by kind (see the module docstring for each formula)."""

    setup: Setup
    params: int
    trainable: int
    weights: int
    grads: int
    optimizer: int
    gathered: int  # FSDP: gathered units; plain mixed: the bf16 weight copy
    activations: int  # saved for backward
    head_peak: int  # transient logits and their gradient

    @property
    def total(self) -> int:
        return (self.weights + self.grads + self.optimizer + self.gathered + self.activations
                + self.head_peak)  # fmt: skip

    def fits(self, gpu_bytes: float) -> bool:
        return self.total <= USABLE * gpu_bytes

    def rows(self) -> list[tuple[str, int]]:
        return [("weights", self.weights), ("gradients", self.grads),
                ("optimizer states", self.optimizer), ("gathered / bf16 copy", self.gathered),
                ("activations (saved)", self.activations), ("output head peak", self.head_peak),
                ("total", self.total)]  # fmt: skip


def layer_activation_bytes(a: Architecture, dtype: str, seq_len: int) -> float:
    """Bytes one decoder layer saves for backward, per token (no checkpointing)."""
    e = _BYTES[dtype][3]
    h, q, kv, i, s = a.hidden, a.q_width, a.kv_width, a.intermediate, seq_len - 1
    if a.family == "gpt_neox":
        return e * (3 * h + (q + 2 * kv) + (q + kv) + 2 * q + 2 * i) + 8 + 4 * a.heads + e * s
    return 2 * (4 * h + 4 + 2 * e * h) + e * (2 * q + 2 * kv + 4 * i) + 4 * a.heads + e * s


def outer_activation_bytes(a: Architecture, dtype: str) -> float:
    """Bytes per token saved outside the layers: final norm, token ids, float32 log-probs."""
    e = _BYTES[dtype][3]
    norm = 2 * e * a.hidden + 8 if a.family == "gpt_neox" else 4 * a.hidden + 4 + 2 * e * a.hidden
    return norm + 8 + 4 * a.vocab


def lora_activation_bytes(a: Architecture, dtype: str, rank: int) -> float:
    """Bytes per token per layer that LoRA adapters on every linear add to a layer's saved
    tensors: the A outputs (and float32 copies of the inputs), minus what the frozen base no
    longer needs (a frozen norm weight does not keep its normed input: Llama, Mistral)."""
    e = _BYTES[dtype][3]
    ins = [n_in for n_in, _ in a.linears().values()]
    extra = 4 * rank * len(ins) - (0 if a.family == "gpt_neox" else 2 * e * a.hidden)
    if e != 4:  # each adapter keeps a float32 copy of its input; the frozen base keeps none
        # of the inputs that only a linear saved (GPT-NeoX: all four; Llama: the two normed
        # inputs and the MLP product, while the attention output stays, kept by the attention)
        only_linear = sum(ins) if a.family == "gpt_neox" else 2 * a.hidden + a.intermediate
        extra += 4 * sum(ins) - e * only_linear
    return extra


def lora_outer_bytes(a: Architecture, dtype: str) -> float:
    """Bytes per token that a frozen base does not save outside the layers (negative): the
    head's input and the first layer's norm input (nothing before it needs a gradient)."""
    e = _BYTES[dtype][3]
    if a.family == "gpt_neox":
        return -(e * a.hidden + e * a.hidden + 16)  # head input; first LN input, 2 x 2 stats
    return -(e * a.hidden + e * a.hidden + 4 * a.hidden + 4)  # head input, final normed; x, rstd


def activation_bytes(a: Architecture, s: Setup) -> int:
    """Bytes saved for backward by one micro-batch on one GPU."""
    tokens = s.n_seqs * (s.seq_len - 1)
    layer = layer_activation_bytes(a, s.dtype, s.seq_len)
    outer = outer_activation_bytes(a, s.dtype)
    if s.mode == "lora":
        layer += lora_activation_bytes(a, s.dtype, s.lora_rank)
        outer += lora_outer_bytes(a, s.dtype)
    e = _BYTES[s.dtype][3]
    per_token = (a.layers * e * a.hidden + layer if s.checkpointing else a.layers * layer) + outer
    return math.ceil(tokens * per_token)


def estimate(a: Architecture, s: Setup) -> Estimate:
    """Memory per GPU of training ``a`` the way ``s`` says (bytes; formulas in the docstring)."""
    w, g, o, e = _BYTES[s.dtype]
    P = a.n_params()
    tokens = s.n_seqs * (s.seq_len - 1)
    head = tokens * a.vocab * (8 + (e if e != 4 else 0))
    acts = activation_bytes(a, s)
    if s.mode == "lora":
        n = a.lora_params(s.lora_rank)
        base = P * (4 if s.dtype == "float32" else 2)
        return Estimate(s, P + n, n, base + 4 * n, 4 * n, 8 * n, 0, acts, head)
    if s.mode == "plain":
        copy = 2 * P if s.dtype == "mixed" else 0
        return Estimate(s, P, P, w * P, g * P, o * P, copy, acts, head)
    shard = 0 if s.cpu_offload else math.ceil(P / s.gpus)
    gathered = e * (a.outer_params() + 3 * a.layer_params())
    return Estimate(s, P, P, w * shard, g * shard, o * shard, gathered, acts, head)


def options(a: Architecture, s: Setup, gpu_bytes: float, max_gpus: int = 8) -> list[Estimate]:
    """Setups near ``s`` that fit ``gpu_bytes`` per GPU, cheapest change first: activation
    checkpointing, FSDP over 2..``max_gpus`` GPUs (powers of 2), FSDP with CPU offload, LoRA,
    halving the micro-batch (down to 1 string)."""
    tries = [replace(s, checkpointing=True)]
    for n in (2, 4, 8, 16, 32, 64):
        if n <= max_gpus:
            tries += [replace(s, mode="fsdp", gpus=n), replace(s, mode="fsdp", gpus=n,
                                                               checkpointing=True)]  # fmt: skip
    top = max(2, max_gpus)
    tries += [replace(s, mode="fsdp", gpus=top, cpu_offload=True, checkpointing=True)]
    tries += [replace(s, mode="lora", cpu_offload=False, gpus=1),
              replace(s, mode="lora", cpu_offload=False, gpus=1, checkpointing=True)]  # fmt: skip
    m = s.n_seqs
    while m > 1:
        m = (m + 1) // 2
        tries += [replace(s, micro_batch=m), replace(s, micro_batch=m, checkpointing=True)]
    out, seen = [], {s}
    for t in tries:
        if t in seen:
            continue
        seen.add(t)
        est = estimate(a, t)
        if est.fits(gpu_bytes):
            out.append(est)
    return out


def gib(n: float) -> str:
    return f"{n / GiB:8.2f} GiB"


def report(a: Architecture, name: str, s: Setup, gpu_gib: float, max_gpus: int = 8) -> str:
    """The plan as text: the parameter counts, a table per mode and a plain verdict."""
    gpu = gpu_gib * GiB
    lines = [f"{name}: {a.n_params():,} parameters ({a.family}, {a.layers} layers, hidden "
             f"{a.hidden}, vocab {a.vocab}); GPU: {gpu_gib:g} GiB, of which {USABLE:.0%} "
             f"planned for"]  # fmt: skip
    modes = [s, replace(s, mode="fsdp", gpus=max(s.gpus, 2) if s.mode != "fsdp" else s.gpus,
                        cpu_offload=False),
             replace(s, mode="lora", gpus=1, cpu_offload=False)]  # fmt: skip
    if s.mode != "plain":
        modes = [replace(s, mode="plain", gpus=1, cpu_offload=False)] + [
            m for m in modes if m.mode != "plain"
        ]
    shown = []
    for m in modes:
        if m.mode == s.mode:
            m = s
        if m in shown:
            continue
        shown.append(m)
    for m in shown:
        est = estimate(a, m)
        verdict = "fits" if est.fits(gpu) else "does NOT fit"
        mark = "  <- asked" if m == s else ""
        lines += ["", f"{m.describe()}{mark}: {verdict}"]
        lines += [f"  {label:<22}{gib(v)}" for label, v in est.rows()]
        if m.mode == "lora":
            lines.append(f"  trainable: {est.trainable:,} adapter parameters")
    asked = estimate(a, s)
    lines.append("")
    if asked.fits(gpu):
        lines.append(f"verdict: fits ({gib(asked.total).strip()} of "
                     f"{gib(USABLE * gpu).strip()} per GPU)")  # fmt: skip
    else:
        lines.append(f"verdict: does NOT fit ({gib(asked.total).strip()} needed, "
                     f"{gib(USABLE * gpu).strip()} usable per GPU)")  # fmt: skip
        opts = options(a, s, gpu, max_gpus)
        if opts:
            lines.append("options that fit, cheapest change first:")
            lines += [f"  - {o.setup.describe()}: {gib(o.total).strip()}" for o in opts[:5]]
        else:
            lines.append(f"nothing near this setup fits {gpu_gib:g} GiB with up to {max_gpus} "
                         "GPUs: use more GPUs or bigger ones")  # fmt: skip
    return "\n".join(lines)
