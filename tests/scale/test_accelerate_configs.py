"""configs/accelerate/*.yaml: accelerate's own launcher reads them into the intended FSDP plugin,
and the wrap units are the decoder-layer classes of the models they name; the DDP configs'
process counts (GPU runs untested)."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

# accelerate comes with the scale extra, which scripts/setup.sh installs: no skip, a missing
# install must fail here
import accelerate  # noqa: E402, F401
import pytest

from grammarlab.train.models import ModelSpec, load_model

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "accelerate"
# config file -> (tiny preset of the same family, offload and checkpointing on)
FSDP = {
    "fsdp_pythia1b_1x8.yaml": ("pythia-tiny", False),
    "fsdp_llama3_8b_1x8.yaml": ("llama-tiny", False),
    "fsdp_mistral_nemo_12b_1x8.yaml": ("mistral-tiny", False),
    "fsdp_mistral_nemo_12b_1x8_offload.yaml": ("mistral-tiny", True),
}
# DDP config file -> processes (float32: accelerate's bf16 autocast would apply if set);
# ddp_2_processes.yaml is the setup of tests/train/test_distributed.py
DDP = {"ddp_1node_8gpus.yaml": 8, "ddp_2_processes.yaml": 2}
# the 2-process FSDP setup of tests/train/test_fsdp.py (which checks its settings)
CPU_FSDP = "fsdp_2_processes.yaml"


def _launch_args(path: Path):
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    argv = ["--config_file", str(path), "-m", "grammarlab", "train", "RUN.toml"]
    args, _, _ = _validate_launch_command(launch_command_parser().parse_args(argv))
    return args


def test_every_config_is_listed():
    listed = [*FSDP, *DDP, CPU_FSDP, "lora_1gpu.yaml"]
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == sorted(listed)


@pytest.mark.parametrize("name", list(FSDP))
def test_fsdp_configs_give_the_intended_plugin(name):
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_multi_gpu_env

    preset, heavy = FSDP[name]
    args = _launch_args(CONFIGS / name)
    assert args.use_fsdp and args.num_processes == 8 and args.mixed_precision == "bf16"
    with mock.patch.dict(os.environ, prepare_multi_gpu_env(args)):
        plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2
    assert plugin.activation_checkpointing is heavy
    assert type(plugin.cpu_offload).__name__ == ("CPUOffloadPolicy" if heavy else "OffloadPolicy")
    # the wrap unit is the class of the family's decoder layers
    model, _ = load_model(ModelSpec(preset), ("a", "b"), seed=0)
    layer = model.base_model.layers[0]
    assert plugin.transformer_cls_names_to_wrap == [type(layer).__name__]


def test_lora_config_is_one_process_without_sharding():
    args = _launch_args(CONFIGS / "lora_1gpu.yaml")
    # a one-process launch is a plain run: accelerate's mixed precision would not be applied
    assert not args.use_fsdp and args.num_processes == 1 and args.mixed_precision == "no"


@pytest.mark.parametrize("name", list(DDP))
def test_ddp_configs_replicate_the_model_without_mixed_precision(name):
    args = _launch_args(CONFIGS / name)
    assert args.multi_gpu and not args.use_fsdp and args.num_processes == DDP[name]
    assert args.mixed_precision == "no"
