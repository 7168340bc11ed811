"""``grammarlab plan``: the verdict in words, user mistakes as one-line errors."""

from __future__ import annotations

from pathlib import Path

from grammarlab.cli import main
from grammarlab.scale.arch import ARCHITECTURES
from grammarlab.scale.plan import Setup, estimate, gib


def test_plan_says_whether_it_fits_and_what_would(capsys):
    assert main(["plan", "--model", "llama3-8b", "--gpu-memory-gb", "80"]) == 0
    out = capsys.readouterr().out
    assert "8,030,261,248 parameters" in out
    assert "verdict: does NOT fit" in out and "FSDP over" in out
    assert main(["plan", "--model", "llama3-8b", "--gpu-memory-gb", "80", "--gpus", "8"]) == 0
    assert "verdict: fits" in capsys.readouterr().out


def test_plan_tiny_model_needs_vocab_and_bad_flags_are_errors(capsys):
    assert main(["plan", "--model", "pythia-tiny", "--gpu-memory-gb", "1", "--vocab", "29"]) == 0
    assert "verdict: fits" in capsys.readouterr().out
    assert main(["plan", "--model", "pythia-tiny", "--gpu-memory-gb", "1"]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["plan", "--model", "llama3-8b", "--gpu-memory-gb", "-1"]) == 2
    assert "--gpu-memory-gb" in capsys.readouterr().err


def _asked_total(out: str) -> str:
    """The 'total' line of the block marked '<- asked'."""
    block = out.split("<- asked")[1]
    return next(line for line in block.splitlines() if line.strip().startswith("total"))


def test_plan_reads_a_run_config_and_flags_override_it(tmp_path, capsys):
    root = Path(__file__).resolve().parents[2]
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'grammar = "{root / "grammars" / "random_26.cfg"}"\n'
                   'model = "smollm2-135m-instruct"\nn_train = 64\nmicro_batch_size = 16\n'
                   'dtype = "bfloat16"\n[lora]\nrank = 4\n')  # fmt: skip
    assert main(["plan", "--config", str(cfg), "--gpu-memory-gb", "80"]) == 0
    out = capsys.readouterr().out
    assert "smollm2-135m-instruct, bfloat16, LoRA rank 4, n_train 64" in out
    assert "LoRA rank 4, bfloat16, 16 strings x 66 tokens per pass  <- asked" in out
    arch = ARCHITECTURES["smollm2-135m-instruct"]
    want = estimate(arch, Setup("lora", "bfloat16", n_train=64, micro_batch=16, seq_len=66,
                                lora_rank=4))  # fmt: skip
    assert _asked_total(out).split(maxsplit=1)[1] == gib(want.total).strip()
    # flags given override the config: a full float32 fine-tune, 8 strings of 10 letters
    assert main(["plan", "--config", str(cfg), "--gpu-memory-gb", "80", "--lora-rank", "0",
                 "--dtype", "float32", "--n-train", "8", "--max-len", "10"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "1 GPU, float32, 8 strings x 12 tokens per pass  <- asked" in out
    want = estimate(arch, Setup("plain", "float32", n_train=8, micro_batch=16, seq_len=12))
    assert _asked_total(out).split(maxsplit=1)[1] == gib(want.total).strip()


def test_plan_config_mistakes_are_one_line_errors(tmp_path, capsys):
    assert main(["plan", "--config", str(tmp_path / "none.toml"), "--gpu-memory-gb", "8"]) == 2
    err = capsys.readouterr().err
    assert "none.toml: error: no such config file" in err and "Traceback" not in err
    bad = tmp_path / "bad.toml"
    bad.write_text('grammar = "grammars/random_26.cfg"\nn_trian = 3\n')
    assert main(["plan", "--config", str(bad), "--gpu-memory-gb", "8"]) == 2
    assert "bad.toml:2: error: unknown config key 'n_trian'" in capsys.readouterr().err
    assert main(["plan", "--gpu-memory-gb", "8"]) == 2
    assert "error: plan needs a model" in capsys.readouterr().err
