"""Checkpoints: a round trip restores weights, optimizer, scheduler and random state bit for bit; a
kill between renames or a failed write leaves the previous checkpoint; the format is a Hugging
Face directory (a PEFT adapter for LoRA runs)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import grammarlab.runs.launch as launch
from grammarlab.errors import GrammarlabError
from grammarlab.runs.folder import RunDir
from grammarlab.train.models import ModelSpec, load_model
from grammarlab.train.restore import load_run_model


def _model_opt():
    """A tiny Hugging Face model (a checkpoint is a Hugging Face directory), its optimizer and
    scheduler, and its TokenMap."""
    model, tmap = load_model(ModelSpec("pythia-tiny", hidden_size=8, num_layers=1), ("a", "b"),
                             seed=0)  # fmt: skip
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, fused=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1.0 - i / 10)
    return model, opt, sched, tmap


def test_checkpoint_round_trip_and_replacement(tmp_path):
    run = RunDir(tmp_path)
    model, opt, sched, tmap = _model_opt()
    model(input_ids=torch.tensor([[tmap.bos_id, 0, 1]])).logits.sum().backward()
    opt.step()
    sched.step()
    run.save_checkpoint(1, model, opt, sched, tmap)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    torch.manual_seed(5)
    run.save_checkpoint(2, model, opt, sched, tmap)
    want_rng = torch.get_rng_state()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]  # latest only
    torch.rand(3)
    m2, o2, s2, _ = _model_opt()
    assert run.load_checkpoint(m2, o2, s2) == 2
    for (name, p), q in zip(model.named_parameters(), m2.parameters(), strict=True):
        assert torch.equal(p, q), name
    assert s2.last_epoch == 1
    assert torch.equal(torch.get_rng_state(), want_rng)
    a, b = opt.state_dict(), o2.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for i in a["state"]:
        for k, v in a["state"][i].items():
            assert torch.equal(v, b["state"][i][k]) and v.dtype == b["state"][i][k].dtype, k


def test_kill_between_renames_falls_back_to_the_old_checkpoint(tmp_path):
    run = RunDir(tmp_path)
    model, opt, sched, tmap = _model_opt()
    run.save_checkpoint(5, model, opt, sched, tmap)
    shutil.move(tmp_path / "checkpoint", tmp_path / "checkpoint.old")  # the state mid-swap
    assert run.checkpoint_epoch() == 5
    run.save_checkpoint(6, model, opt, sched, tmap)
    assert run.checkpoint_epoch() == 6 and not (tmp_path / "checkpoint.old").exists()


def test_a_failed_checkpoint_write_leaves_no_temporary_folder(tmp_path, monkeypatch):
    from grammarlab.runs import checkpoint

    run = RunDir(tmp_path)
    model, opt, sched, tmap = _model_opt()
    run.save_checkpoint(1, model, opt, sched, tmap)

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "_write_tensors", full)
    with pytest.raises(OSError, match="No space"):
        run.save_checkpoint(2, model, opt, sched, tmap)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]
    assert run.checkpoint_epoch() == 1


def test_no_checkpoint_is_an_error(tmp_path):
    run = RunDir(tmp_path)
    assert run.checkpoint_epoch() is None
    with pytest.raises(GrammarlabError, match="no checkpoint"):
        run.load_checkpoint(torch.nn.Linear(1, 1))


def test_the_checkpoint_is_a_hugging_face_directory(tiny_cfg, tmp_path):
    from transformers import AutoModelForCausalLM

    run = tmp_path / "r"
    launch.run(tiny_cfg(epochs=2, n_generate=0), run, quiet=True)
    ours, tmap, _ = load_run_model(run)
    hf = AutoModelForCausalLM.from_pretrained(run / "checkpoint")
    ids, mask = tmap.encode([("1", "2", "3", "5")])
    with torch.no_grad():
        a = ours(input_ids=ids, attention_mask=mask.long()).logits
        b = hf(input_ids=ids, attention_mask=mask.long()).logits
    assert torch.equal(a, b)  # the same weights, bit for bit
    with np.load(run / "surprisals/epoch_0002.npz") as z:
        assert z["train_bits"].dtype == np.float32


def test_a_lora_checkpoint_is_a_peft_adapter(tiny_cfg, tmp_path):
    from peft import PeftModel

    from grammarlab.train.config import resolve
    from grammarlab.train.loop import build_model

    run = tmp_path / "r"
    cfg = tiny_cfg(epochs=2, n_generate=0, lora={"rank": 2, "alpha": 4.0})
    launch.run(cfg, run, quiet=True)
    assert (run / "checkpoint/adapter_model.safetensors").is_file()
    ours, tmap, _ = load_run_model(run)
    g = RunDir(run).read_grammar()
    base, _ = build_model(resolve(tiny_cfg(epochs=2, n_generate=0), g), g.terminals, "cpu",
                          torch.float32)  # fmt: skip
    peft = PeftModel.from_pretrained(base, run / "checkpoint")
    ids, mask = tmap.encode([("1", "2", "3", "5")])
    with torch.no_grad():
        a = ours(input_ids=ids, attention_mask=mask.long()).logits
        b = peft(input_ids=ids, attention_mask=mask.long()).logits
    assert torch.equal(a, b)
