"""One run sharded with FSDP2 over 2 processes (accelerate launch, gloo on the CPU): the same
losses and surprisals as one process, sharded checkpoints (one safetensors file per rank) that a
killed run resumes from, refused under another world size or sharding, and a full Hugging Face
final_model/."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import accelerate_runs
import numpy as np
import pytest
import torch
from accelerate_runs import assert_close_runs, metrics, same_run
from conftest import GRAMMAR

from grammarlab.errors import ConfigError, GrammarlabError
from grammarlab.runs import checkpoint
from grammarlab.runs.folder import RunDir, Status
from grammarlab.runs.launch import run as launch
from grammarlab.train.config import TrainConfig, dumps_config
from grammarlab.train.fsdp import Settings, settings_from_plugin, shard_model, unit_names
from grammarlab.train.models import ModelSpec, load_model
from grammarlab.train.restore import load_run_model

CONFIG = "fsdp_2_processes.yaml"


def _plugin_of(config: str):
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_multi_gpu_env

    argv = ["--config_file", str(accelerate_runs.CONFIGS / config), "x.py"]
    args, _, _ = _validate_launch_command(launch_command_parser().parse_args(argv))
    env = prepare_multi_gpu_env(args)
    with mock.patch.dict(os.environ, env):
        return FullyShardedDataParallelPlugin(), env["ACCELERATE_MIXED_PRECISION"]


@pytest.mark.parametrize("config, want", [
    (CONFIG, Settings((), "no", False, False, True)),
    ("fsdp_llama3_8b_1x8.yaml", Settings(("LlamaDecoderLayer",), "bf16", False, False, True)),
    ("fsdp_mistral_nemo_12b_1x8_offload.yaml",
     Settings(("MistralDecoderLayer",), "bf16", True, True, True)),
])  # fmt: skip
def test_the_accelerate_configs_give_the_intended_settings(config, want):
    assert settings_from_plugin(*_plugin_of(config)) == want


@pytest.mark.parametrize("change, message", [
    ({"fsdp_version": 1}, "fsdp_version 1 is not supported"),
    ({"auto_wrap_policy": lambda *a: None}, "fsdp_auto_wrap_policy <lambda> is not supported"),
    ({"mixed_precision": "fp16"}, "mixed_precision fp16 is not supported"),
])  # fmt: skip
def test_what_grammarlab_does_not_run_is_a_one_line_error(change, message):
    plugin = SimpleNamespace(fsdp_version=2, auto_wrap_policy=None, cpu_offload=None,
                             transformer_cls_names_to_wrap=None, activation_checkpointing=False,
                             reshard_after_forward=True)  # fmt: skip
    mixed = change.pop("mixed_precision", "no")
    vars(plugin).update(change)
    with pytest.raises(ConfigError, match=message):
        settings_from_plugin(plugin, mixed)


@pytest.mark.parametrize("preset, layer", [("pythia-tiny", "GPTNeoXLayer"),
                                           ("llama-tiny", "LlamaDecoderLayer"),
                                           ("mistral-tiny", "MistralDecoderLayer")])  # fmt: skip
def test_the_wrap_units_are_the_decoder_layers(preset, layer):
    model, _ = load_model(ModelSpec(preset, num_layers=2), ("a", "b"), seed=0)
    assert unit_names(model, Settings()) == (layer,)  # the family's default
    assert unit_names(model, Settings((layer,))) == (layer,)
    other = "LlamaDecoderLayer" if layer == "GPTNeoXLayer" else "GPTNeoXLayer"
    with pytest.raises(ConfigError, match=f"names {other}, which the model") as e:
        unit_names(model, Settings((other,)))
    assert f"its decoder layer is {layer}" in str(e.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for CPU-only machines")
def test_cpu_offload_without_a_gpu_is_a_one_line_error():
    model, _ = load_model(ModelSpec("pythia-tiny", num_layers=1), ("a", "b"), seed=0)
    with pytest.raises(ConfigError, match="fsdp_offload_params: true needs GPUs"):
        shard_model(model, Settings(offload=True))


def _state_file(folder: Path, sharding) -> None:
    folder.mkdir()
    state = {
        "format": checkpoint.FORMAT,
        "epoch": 1,
        "world_size": 2,
        "scheduler": {},
        "optimizer": {"state": {}, "param_groups": []},
        "rng": {"numpy": ["MT19937", 624, 0, 0.0]},
    }  # fmt: skip (a well-formed state)
    if sharding is not None:
        state["sharding"] = sharding
    (folder / checkpoint.STATE).write_text(json.dumps(state))


@pytest.mark.parametrize("saved, here, message", [
    ({"fsdp_version": 2, "world_size": 2, "units": ["GPTNeoXLayer"]}, None,
     "written with FSDP over 2 process.*units: GPTNeoXLayer.*this run is without FSDP"),
    (None, {"fsdp_version": 2, "world_size": 2, "units": ["GPTNeoXLayer"]},
     "written without FSDP, this run is with FSDP"),
    ({"fsdp_version": 2, "world_size": 2, "units": []},
     {"fsdp_version": 2, "world_size": 2, "units": ["GPTNeoXLayer"]}, "units: none"),
])  # fmt: skip
def test_a_checkpoint_of_another_sharding_is_refused(tiny_cfg, tmp_path, saved, here, message):
    model, _ = load_model(tiny_cfg().model, ("a", "b"), seed=0)
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1.0)
    _state_file(tmp_path / "ckpt", saved)
    with pytest.raises(GrammarlabError, match=message) as e:
        checkpoint.load(tmp_path / "ckpt", model, opt, sched, world_size=2, sharding=here)
    assert len(str(e.value).splitlines()) <= 2  # the error and its hint


@pytest.fixture(scope="module")
def fsdp_run(tmp_path_factory):
    """A 2-process FSDP run killed in its second checkpoint write, then resumed on 2 processes,
    and the same run in this process: (killed-and-resumed folder, single-process folder, the
    folder of its run.toml). Made once for the module's tests (two launches)."""
    tmp_path = tmp_path_factory.mktemp("fsdp")
    (tmp_path / "h.cfg").write_text(GRAMMAR)
    # 7 training strings (4 + 3 per rank), 5 test strings and micro-batches of 2: the ranks
    # plan different numbers of micro-batches in training and in evaluation (padding batches)
    cfg = TrainConfig(grammar=str(tmp_path / "h.cfg"), epochs=3, extraction_prefix=2,
                      model=ModelSpec("pythia-tiny", hidden_size=32, num_layers=1),
                      n_train=7, n_test=5, n_random=4, n_generate=4, checkpoint_every=1,
                      micro_batch_size=2, save_final_model=True)  # fmt: skip
    toml = tmp_path / "run.toml"
    toml.write_text(dumps_config(cfg))
    one, two = tmp_path / "one", tmp_path / "two"
    assert launch(cfg, one, quiet=True) == "done"
    assert accelerate_runs.launch(toml, two, 2, tmp_path, CONFIG) != 0  # killed
    # every rank's shard is in checkpoint.tmp/, the state that completes it is not
    tmp = two / "checkpoint.tmp"
    assert sorted(p.name for p in tmp.iterdir()) == [checkpoint.shard_name(r, 2) for r in (0, 1)]
    assert RunDir(two).checkpoint_epoch() == 1
    assert sorted(p.name for p in (two / "checkpoint").iterdir()) == sorted(
        [checkpoint.shard_name(0, 2), checkpoint.shard_name(1, 2), "rng.safetensors",
         "training_state.json"])  # fmt: skip
    # a sharded checkpoint of 2 processes is not resumed by 1
    copy = tmp_path / "alone"
    shutil.copytree(two, copy)
    with pytest.raises(GrammarlabError, match="written by a run on 2 process"):
        launch(cfg, copy, quiet=True)
    accelerate_runs.launch(toml, two, 0, tmp_path, CONFIG)
    return two, one, tmp_path


@pytest.mark.numerics
def test_fsdp_on_two_processes_matches_one_and_resumes_after_a_kill(fsdp_run):
    two, one, _ = fsdp_run
    assert RunDir(two).read_status().state == "done"
    assert [r["epoch"] for r in metrics(two)] == [0, 1, 2, 3]
    dist = RunDir(two).read_env()["distributed"]  # the folder says how it was sharded
    assert dist == {"world_size": 2, "backend": "gloo", "strategy": "fsdp2",
                    "mixed_precision": "no",
                    "fsdp": {"sharding_strategy": "FULL_SHARD", "units": [], "offload": False,
                             "activation_checkpointing": False}}  # fmt: skip
    # The runs differ by float32 rounding, epoch 0 included: other micro-batches (padding
    # widths, orders of summation) and the gradient summed over ranks by the reduce-scatter;
    # measured 3e-8 nats/token and 5e-7 bits per token, within the bound of
    # numerics.assert_runs_close (2 gamma_256 = 3e-5 relative, derived there).
    assert_close_runs(two, one)
    # generation in lockstep: as many samples as one process; not compared string by string (a
    # sample flips where a uniform draw falls within rounding of a boundary of the distribution)
    names = sorted(p.name for p in (one / "generations").iterdir())
    assert names == sorted(p.name for p in (two / "generations").iterdir())
    for name in names:
        lines = (two / "generations" / name).read_text().splitlines()
        assert len(lines) == len((one / "generations" / name).read_text().splitlines()) == 4
    # rank 0 wrote the analysis; the resume removed the killed write's checkpoint.tmp
    assert (two / "phases.json").is_file() and not list(two.glob("checkpoint.*"))


def test_the_final_model_is_a_full_hugging_face_directory(fsdp_run):
    from transformers import AutoModelForCausalLM

    two, _, _ = fsdp_run
    final = AutoModelForCausalLM.from_pretrained(two / "final_model")
    # the sharded checkpoint joined in one process (what `grammarlab score` reads) holds the
    # same weights as the gathered final model: both are the state after the last update
    joined, _, _ = load_run_model(two)
    a, b = final.state_dict(), joined.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


class _Evil:
    """A pickle that runs a shell command when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_no_shard_is_unpickled(fsdp_run, tmp_path):
    two, _, _ = fsdp_run
    marker = tmp_path / "pwned"
    for r in (0, 1):
        bad = tmp_path / f"bad{r}"
        shutil.copytree(two, bad)
        (bad / "checkpoint" / checkpoint.shard_name(r, 2)).write_bytes(pickle.dumps(_Evil(marker)))
        with pytest.raises(GrammarlabError, match="not a safetensors file"):
            load_run_model(bad)
        assert not marker.exists()


@pytest.mark.slow
def test_a_killed_fsdp_run_resumes_bit_identically(fsdp_run, tmp_path):
    two, _, made = fsdp_run
    straight = tmp_path / "straight"
    accelerate_runs.launch(made / "run.toml", straight, 0, tmp_path, CONFIG)
    same_run(two, straight)
    for r in (0, 1):  # the shards too
        name = checkpoint.shard_name(r, 2)
        assert (two / "checkpoint" / name).read_bytes() == (
            straight / "checkpoint" / name
        ).read_bytes()


@pytest.mark.slow
def test_an_fsdp_checkpoint_is_refused_by_a_ddp_launch(fsdp_run, tmp_path):
    two, _, made = fsdp_run
    copy = tmp_path / "ddp"
    shutil.copytree(two, copy)
    shutil.rmtree(copy / "final_model")
    RunDir(copy).write_status(Status("running", 2))  # as if killed after its last checkpoint
    with pytest.raises(AssertionError, match="written with FSDP over 2 process"):
        accelerate_runs.launch(made / "run.toml", copy, 0, tmp_path, "ddp_2_processes.yaml")


@pytest.mark.slow
def test_bf16_mixed_precision_is_applied(tiny_cfg, tmp_path):
    # the layers compute in bfloat16 (8-bit mantissa: ~4e-3 relative rounding per operation);
    # the losses then differ from float32 by far more than float32 rounding (> 1e-6 nats/token)
    # and by far less than the losses themselves (< 1e-2; measured ~4e-4 with DDP in bf16)
    cfg = tiny_cfg(epochs=2, n_generate=0, n_train=7)
    toml = tmp_path / "run.toml"
    toml.write_text(dumps_config(cfg))
    launch(cfg, tmp_path / "one", quiet=True)
    for config in (CONFIG, "ddp_2_processes.yaml"):
        out = tmp_path / config
        accelerate_runs.launch(toml, out, 0, tmp_path, config, ("--mixed_precision", "bf16"))
        diffs = [abs(x[k] - y[k]) for x, y in zip(metrics(out), metrics(tmp_path / "one"),
                                                   strict=True)
                 for k in x if k.endswith("_loss") and x[k] is not None]  # fmt: skip
        assert 1e-6 < max(diffs) < 1e-2, (config, max(diffs))
        assert np.all(np.isfinite(diffs))


@pytest.mark.slow
def test_activation_checkpointing_changes_no_number(tiny_cfg, tmp_path):
    # recomputing a layer in backward runs the same operations on the same inputs: bit for bit
    cfg = tiny_cfg(epochs=2, n_generate=2, n_train=7)
    toml = tmp_path / "run.toml"
    toml.write_text(dumps_config(cfg))
    plain, heavy = tmp_path / "plain", tmp_path / "heavy"
    accelerate_runs.launch(toml, plain, 0, tmp_path, CONFIG)
    options = ("--fsdp_activation_checkpointing", "true")
    accelerate_runs.launch(toml, heavy, 0, tmp_path, CONFIG, options)
    same_run(heavy, plain)
