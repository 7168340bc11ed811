"""Every experiment file loads as a sweep, with the grid the README promises (run counts by
hand: grammars x sizes x seeds x models)."""

from __future__ import annotations

from pathlib import Path

import pytest

from grammarlab.sweep.spec import load_sweep

ROOT = Path(__file__).resolve().parents[1] / "experiments"

# file -> runs: (grammars) x (n) x (seeds) x (models or lrs)
RUNS = {
    "fig2_gpu": 2 * 2 * 5 * 3, "fig2_cpu": 2 * 2 * 5, "fig2_smollm2": 2 * 1 * 1,
    "fig3_gpu": 1 * 2 * 5 * 3, "fig3_cpu": 1 * 2 * 5, "fig3_smollm2": 1,
    "fig4_gpu": 2 * 5 * 3, "fig4_cpu_no_warmup": 2 * 5, "fig4_smollm2": 2,
    "fig5a_gpu": 3 * 5 * 3, "fig5a_cpu": 3 * 5, "fig5a_smollm2": 3,
    "fig5b_gpu": 3 * 5 * 3, "fig5b_cpu": 3 * 5, "fig5b_smollm2": 3,
    "fig5c_gpu": 3 * 5 * 3, "fig5c_cpu": 3 * 5, "fig5c_smollm2": 3,
    "smollm2_lr_sweep": 2 * 6 * 2, "tiny_phase_search": 3 * 2 * 2 * 2,
    "fig2_cpu_vocab2048": 2 * 2 * 5, "tiny_vocab_search": 2 * 4 * 2,
    "fig4_cpu_keep_optimizer": 2 * 5, "fig4_cpu_one_schedule": 2 * 5, "fig4_cpu": 2 * 5,
}  # fmt: skip


def test_every_file_is_listed():
    # capacity_*.toml are capacity grids (grammarlab capacity), tested in tests/capacity
    sweeps = [p.stem for p in ROOT.glob("*.toml") if not p.stem.startswith("capacity_")]
    assert sorted(sweeps) == sorted(RUNS)
    readme = (ROOT / "README.md").read_text()
    for stem in RUNS:
        assert f"{stem}.toml" in readme or stem.rsplit("_", 1)[0] in readme


# expanding a sweep resolves every run's config (test-set sizes, distinctness checks against the
# grammar's language), 5-20 s for the big grids: those are slow tests
SLOW = {s for s in RUNS if s.endswith("_gpu") or s.startswith(("fig5b", "fig2"))}


@pytest.mark.parametrize(
    "stem", [pytest.param(s, marks=pytest.mark.slow) if s in SLOW else s for s in sorted(RUNS)]
)
def test_experiment_loads(stem, tmp_path):
    sweep = load_sweep(ROOT / f"{stem}.toml", out=tmp_path / stem)
    assert len(sweep.runs) == RUNS[stem]
    cfgs = [r.config for r in sweep.runs]
    variant = stem.rsplit("_", 1)[-1]
    presets = {c.model.preset for c in cfgs}
    if variant == "gpu":
        assert presets == {"pythia-1b", "llama3-8b", "mistral-nemo-12b"}
        assert {c.dtype for c in cfgs} == {"bfloat16"}
    elif variant in ("smollm2", "sweep"):
        assert presets == {"smollm2-135m-instruct"}
    elif variant == "cpu":
        assert presets == {"pythia-tiny"}
    if stem == "fig2_cpu_vocab2048":
        assert {c.model.vocab_size for c in cfgs} == {2048}
    if stem == "tiny_vocab_search":  # half the runs with 2,048 token ids, half with the grammar's
        assert sorted(str(c.model.vocab_size) for c in cfgs).count("2048") == 8
    warmup = {"fig4_cpu": 20, "fig4_gpu": 20, "fig4_smollm2": 10, "fig4_cpu_no_warmup": None}
    if stem in warmup:  # a fresh AdamW, its lr warmed up (the examples: no shock at the switch)
        assert {(c.fresh_optimizer, c.reset_schedule, c.warmup2_epochs) for c in cfgs} == {
            (True, True, warmup[stem])}  # fmt: skip
    elif stem.startswith("fig4_cpu_"):  # the stage-2 optimizer variants keep AdamW's moments
        assert {(c.fresh_optimizer, c.reset_schedule) for c in cfgs} == {
            (False, stem.endswith("keep_optimizer"))}  # fmt: skip
    if stem.startswith("fig4"):
        assert all(c.sequential for c in cfgs)
    if stem.startswith("fig5b"):
        # 26 letters at the entropies of 2 and 7 letters (64, 179.67 bits/string) and uniform
        from grammarlab.grammar.entropy import string_entropy_bits
        from grammarlab.grammar.load import load

        bits = sorted({round(string_entropy_bits(load(c.grammar)), 1) for c in cfgs})
        assert bits == [64.0, 179.7, 300.8]


def test_pick_lr_applies_the_sweep_rule(tmp_path):
    """experiments/pick_lr.py: per mode the smallest lr on random_l26 that did not diverge and
    whose onset is observed by epoch 20; other grammars, later or censored onsets do not count."""
    import importlib.util

    import pandas as pd

    spec = importlib.util.spec_from_file_location("pick_lr", ROOT / "pick_lr.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = [  # grammar, rank, lr, status, onset, censored
        ("random_l26", 0, 1e-5, "done", 40, False),  # too late
        ("random_l26", 0, 3e-5, "diverged", 3, False),  # diverged
        ("random_l26", 0, 1e-4, "running", 12, False),  # the pick (a stopped run counts)
        ("random_l26", 0, 3e-4, "done", 5, False),
        ("random_l26", 8, 1e-4, "done", 20, True),  # censored at 20: not observed
        ("random_l26", 8, 1e-3, "done", 20, False),  # on the bound: counts
        ("hierarchical_p0.5", 8, 1e-5, "done", 2, False),  # another grammar
    ]
    df = pd.DataFrame(
        rows,
        columns=[
            "grammar",
            "config.lora.rank",
            "config.lr",
            "status",
            "memorization_onset_epoch",
            "memorization_onset_censored",
        ],
    )
    df["min_test_loss"] = 1.0
    assert mod.pick(mod.rows(df)) == {"full": 1e-4, "lora": 1e-3}
    f = tmp_path / "x.toml"
    f.write_text('name = "x"\n[base]\nlr = 0.5\n')
    mod.apply(1e-4, [str(f)])
    assert f.read_text() == 'name = "x"\n[base]\nlr = 0.0001\n'
