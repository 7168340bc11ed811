"""Fully sharded data parallel (FSDP2, ``torch.distributed.fsdp.fully_shard``) for a run launched
with accelerate's FSDP settings (distributed.py decides when).

accelerate 1.15 turns an FSDP launch into plain multi-process CPU (DDP) when there is no GPU
(its state then ignores the FSDP plugin), so its own FSDP preparation can never run on the CPU
where the tests run. We therefore read accelerate's plugin (the launch's ``fsdp_config``) into
:class:`Settings` and apply ``fully_shard`` ourselves, the same way on the CPU and on GPUs: the
code that runs on the cluster is the code the CPU tests run.

* **Units**: one FSDP unit per decoder layer (``fsdp_transformer_layer_cls_to_wrap``, default:
  the model's own ``_no_split_modules``, i.e. ``GPTNeoXLayer``, ``LlamaDecoderLayer``,
  ``MistralDecoderLayer``), and the whole model as the root unit (embeddings, final norm, head).
* **Mixed precision** (``mixed_precision: bf16``): the layers compute in bfloat16 over float32
  sharded master weights; gradients are reduced in float32 (accelerate's own default reduces
  them in bf16), so the sum over ranks of the full-batch gradient is not rounded to 8 bits.
* **CPU offload** (``fsdp_offload_params``): shards, gradients and AdamW states in host memory.
* **Activation checkpointing** (``fsdp_activation_checkpointing``): each decoder layer recomputed
  in backward (transformers' own per-layer checkpointing, non-reentrant), so parameter names do
  not change and checkpoints stay interchangeable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from grammarlab.errors import ConfigError

# the wrap units of the model families grammarlab runs (their decoder layers)
DECODER_LAYERS = ("GPTNeoXLayer", "LlamaDecoderLayer", "MistralDecoderLayer")


@dataclass(frozen=True)
class Settings:
    """What a launch asks of FSDP. ``units``: class names of the wrap units (empty: the model's
    decoder layers); ``mixed_precision``: ``"no"`` or ``"bf16"``."""

    units: tuple[str, ...] = ()
    mixed_precision: str = "no"
    offload: bool = False
    checkpointing: bool = False
    reshard_after_forward: bool = True


def settings_from_plugin(plugin: Any, mixed_precision: str) -> Settings:
    """:class:`Settings` from accelerate's ``FullyShardedDataParallelPlugin`` (built from the
    launch's environment) and accelerate's mixed precision; a one-line error for what grammarlab
    does not run (FSDP1, size-based wrapping, fp16)."""
    if plugin.fsdp_version != 2:
        raise ConfigError(f"fsdp_version {plugin.fsdp_version} is not supported",
                          hint="set fsdp_version: 2 in the accelerate config (FSDP2)")  # fmt: skip
    policy = getattr(plugin.auto_wrap_policy, "__name__", str(plugin.auto_wrap_policy))
    if plugin.auto_wrap_policy is not None and "transformer" not in policy:
        raise ConfigError(f"fsdp_auto_wrap_policy {policy} is not supported",
                          hint="use TRANSFORMER_BASED_WRAP (a unit per decoder layer)")  # fmt: skip
    if mixed_precision not in ("no", "bf16"):
        raise ConfigError(f"mixed_precision {mixed_precision} is not supported under FSDP",
                          hint="use bf16 (or no)")  # fmt: skip
    offload = type(plugin.cpu_offload).__name__ == "CPUOffloadPolicy"
    units = tuple(plugin.transformer_cls_names_to_wrap or ())
    return Settings(units, mixed_precision, offload, bool(plugin.activation_checkpointing),
                    bool(plugin.reshard_after_forward))  # fmt: skip


def unit_names(model: torch.nn.Module, settings: Settings) -> tuple[str, ...]:
    """The class names of ``model``'s wrap units: the configured ones (each must occur in the
    model: a Llama config used for a GPT-NeoX model is an error), else its decoder layers."""
    present = {type(m).__name__ for m in model.modules()}
    if not settings.units:
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        found = tuple(n for n in getattr(base, "_no_split_modules", None) or () if n in present)
        return found or tuple(n for n in DECODER_LAYERS if n in present)
    missing = [n for n in settings.units if n not in present]
    if missing:
        layers = [n for n in DECODER_LAYERS if n in present]
        raise ConfigError(f"fsdp_transformer_layer_cls_to_wrap names {', '.join(missing)}, "
                          f"which the model {type(model).__name__} does not have",
                          hint=f"its decoder layer is {', '.join(layers) or 'unknown'}: set that "
                               "in the accelerate config")  # fmt: skip
    return settings.units


def shard_model(model: torch.nn.Module, settings: Settings) -> torch.nn.Module:
    """``model`` sharded in place over the default process group (``fully_shard`` on every wrap
    unit, then on the whole model); returns it. Its parameters become DTensors: an optimizer
    must be made afterwards."""
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

    names = set(unit_names(model, settings))
    if settings.offload and not torch.cuda.is_available():  # FSDP2's offload needs a device
        raise ConfigError(
            "fsdp_offload_params: true needs GPUs (it moves shards between GPU and host memory)",
            hint="set fsdp_offload_params: false on the CPU",
        )
    if settings.checkpointing:
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    mp = MixedPrecisionPolicy()
    if settings.mixed_precision == "bf16":
        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    kw: dict[str, Any] = {"mp_policy": mp}
    if settings.offload:
        kw["offload_policy"] = CPUOffloadPolicy()
    units = [m for m in model.modules() if type(m).__name__ in names]
    for m in units:
        fully_shard(m, reshard_after_forward=settings.reshard_after_forward, **kw)
    fully_shard(model, **kw)
    return model


def is_sharded(model: torch.nn.Module) -> bool:
    """Whether ``model`` was sharded by :func:`shard_model`."""
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def reshard(model: torch.nn.Module) -> None:
    """Free the gathered weights a forward without backward leaves (evaluation, generation):
    the root unit keeps its parameters gathered after a forward until a backward reshards."""
    model.reshard()


def description(model: torch.nn.Module, settings: Settings, world: int) -> dict[str, Any]:
    """How ``model`` is sharded, as recorded in a sharded checkpoint (a resume must match it)."""
    return {"fsdp_version": 2, "world_size": world, "units": sorted(unit_names(model, settings))}


def full_state_dict(model: torch.nn.Module, main: bool) -> dict[str, torch.Tensor]:
    """The whole model's state dict gathered onto the CPU of rank 0 (``main``); empty on the
    other ranks. Collective: every rank calls it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    sd = get_model_state_dict(model, options=opts)
    return sd if main else {}


def unsharded_copy(model: torch.nn.Module, build: Callable[[], torch.nn.Module],
                   main: bool) -> torch.nn.Module | None:  # fmt: skip
    """On rank 0, a plain model built by ``build`` holding ``model``'s gathered weights (for a
    Hugging Face directory); None elsewhere. Collective."""
    sd = full_state_dict(model, main)
    if not main:
        return None
    plain = build()
    plain.load_state_dict(sd, strict=True)
    return plain


class Lockstep(torch.nn.Module):
    """A sharded model for generation on every rank at once: each forward is collective under
    FSDP, so every rank must run the same number of them. Every rank samples the same strings
    with the same generator, and the logits of each step are rank 0's (broadcast), so the
    samples, and with them every rank's stopping step, are the same on every rank even where
    two GPUs would round differently. Rank 0 writes them. (Sharding the prompts over the ranks
    would need padded steps and a gather for a pass that costs one forward per token.)"""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.inner = model

    @property
    def config(self) -> Any:
        return self.inner.config

    def get_base_model(self) -> torch.nn.Module:
        """The Hugging Face model whose forward signature generate.py reads."""
        m = self.inner
        return m.get_base_model() if hasattr(m, "get_base_model") else m

    def forward(self, *args: Any, **kw: Any) -> Any:
        out = self.inner(*args, **kw)
        logits = out.logits.float().contiguous()
        torch.distributed.broadcast(logits, 0)
        out.logits = logits
        return out
