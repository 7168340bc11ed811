"""Families, labels and stated entropies of a sweep's grammars, from the sweep file or the
grammar headers (file names only as the fallback), through the tables to the report."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from grammarlab.analysis.report import cells, judge_entropy_generalization
from grammarlab.grammar.entropy import derivational_entropy_bits, string_entropy_bits
from grammarlab.grammar.header import header_fields
from grammarlab.grammar.load import load, loads
from grammarlab.grammar.tune import MC_TOL_SE
from grammarlab.plot.common import families
from grammarlab.sweep.execute import run_sweep
from grammarlab.sweep.spec import LABELS, load_sweep, read_labels
from grammarlab.sweep.tables import aggregate
from tests.sweep.fake_trainer import FAKE

# A depth-bounded bracket language (unambiguous, exact entropy): S -> ( A ) | x, A -> ( x ) | x.
# With P(S -> ( A )) = p and P(A -> ( x )) = 1/2 the entropy is h(p) + p bits per string.
BRACKETS = "S -> '(' A ')' [{p}] | 'x' [{q}]\nA -> '(' 'x' ')' [0.5] | 'x' [0.5]\n"
UNJUDGED = "cannot be judged"  # the report's verdicts without a cell to judge start so
PS = {"dyckH8": 0.5, "dyckH16": 0.25, "dyckH28": 0.125}  # the names: no '_' family


def _h2(p: float) -> float:
    return -p * math.log2(p) - (1 - p) * math.log2(1 - p)


def _write_grammars(tmp_path, header: str = "") -> None:
    for name, p in PS.items():
        (tmp_path / f"{name}.cfg").write_text(header + BRACKETS.format(p=p, q=1 - p))


def _sweep(tmp_path, grid_grammars: str) -> pd.DataFrame:
    f = tmp_path / "s.toml"
    f.write_text(f'name = "t"\n[base]\nepochs = 6\nn_train = 4\n[base.model]\n'
                 f'preset = "pythia-tiny"\n[grid]\ngrammar = {grid_grammars}\n')  # fmt: skip
    sw = load_sweep(f, out=tmp_path / "out")
    run_sweep(sw, target=FAKE, progress=False)
    return aggregate(sw.root).phases


def _one_family_judged(ph: pd.DataFrame) -> None:
    assert set(ph.family) == {"dyck"}
    assert len(cells(ph, ("model", "family", "n_train"))) == 1  # one cell of three grammars
    f = judge_entropy_generalization(ph)
    assert not f.verdict.startswith(UNJUDGED) and f.n_cells == 1
    # exact entropies, h(p) + p bits per string, computed by the engine on each run's grammar
    want = {name: _h2(p) + p for name, p in PS.items()}
    assert dict(zip(ph.grammar, ph.entropy_bits, strict=True)) == pytest.approx(want, abs=1e-9)
    assert set(ph.entropy_quantity) == {"string"} and (ph.entropy_se_bits == 0).all()


def test_families_from_the_sweep_file(tmp_path):
    _write_grammars(tmp_path)
    entries = ", ".join(f'{{file = "{n}.cfg", family = "dyck", label = "Dyck {n[5:]}"}}'
                        for n in PS)  # fmt: skip
    ph = _sweep(tmp_path, f"[{entries}]")
    _one_family_judged(ph)
    assert dict(zip(ph.grammar, ph.label, strict=True)) == {n: f"Dyck {n[5:]}" for n in PS}
    assert len(read_labels(tmp_path / "out")) == 3
    # the figures group by the same family
    assert set(families(ph)) == {"dyck"}


def test_families_from_the_grammar_headers(tmp_path):
    _write_grammars(tmp_path, header="# A bounded Dyck language\n# family: dyck\n\n")
    ph = _sweep(tmp_path, "[" + ", ".join(f'"{n}.cfg"' for n in PS) + "]")
    _one_family_judged(ph)
    assert not (tmp_path / "out" / LABELS).exists()  # the sweep file sets none
    assert set(ph.label) == set(PS)  # the file name is the fallback label


def test_file_names_are_only_the_fallback(tmp_path):
    _write_grammars(tmp_path)
    ph = _sweep(tmp_path, "[" + ", ".join(f'"{n}.cfg"' for n in PS) + "]")
    assert set(ph.family) == set(PS)  # three families of one grammar each: nothing to judge
    f = judge_entropy_generalization(ph)
    assert f.verdict.startswith(UNJUDGED) and f.n_cells == 0


AMBIGUOUS = "S -> S S [0.3] | 'a' [0.3] | 'b' [0.4]\n"


def test_derived_grammars_carry_their_stated_entropy_into_the_tables(tmp_path):
    (tmp_path / "amb.cfg").write_text(AMBIGUOUS)
    f = tmp_path / "s.toml"
    f.write_text("""name = "t"
[base]
epochs = 4
n_train = 4
[base.model]
preset = "pythia-tiny"
[[derive]]
grammar = "amb.cfg"
entropy_bits = [2.5, 3.0]
entropy = "derivational"
family = "trees"
label = "binary trees, H_D = {entropy_bits}"
[[derive]]
name = "mc"
grammar = "amb.cfg"
entropy_bits = [3.0]
entropy = "monte-carlo"
mc_samples = 2000
seed = 5
family = "trees"
""")
    sw = load_sweep(f, out=tmp_path / "out")
    names = sorted(r.run_id.rsplit("-", 1)[0] for r in sw.runs)
    assert names == ["amb_temper_H2.5_derivational", "amb_temper_H3_derivational",
                     "mc_temper_H3_monte-carlo"]  # fmt: skip
    run_sweep(sw, target=FAKE, progress=False)
    ph = aggregate(sw.root).phases.set_index("grammar")
    assert set(ph.family) == {"trees"}
    for h in (2.5, 3.0):
        row = ph.loc[f"amb_temper_H{h:g}_derivational"]
        assert row.label == f"binary trees, H_D = {h}"
        assert row.entropy_quantity == "derivational" and row.entropy_se_bits == 0
        assert abs(row.entropy_bits - h) < 1e-6
        g = load(sw.root / "grammars" / f"amb_temper_H{h:g}_derivational.cfg")
        assert row.entropy_bits == pytest.approx(derivational_entropy_bits(g), abs=1e-12)
    mc = ph.loc["mc_temper_H3_monte-carlo"]
    text = (sw.root / "grammars" / "mc_temper_H3_monte-carlo.cfg").read_text()
    stated = header_fields(text)
    assert mc.entropy_quantity == "monte-carlo" and mc.label == "mc_temper_H3_monte-carlo"
    assert mc.entropy_bits == stated.entropy_bits and mc.entropy_se_bits == stated.entropy_se_bits
    assert abs(mc.entropy_bits - 3.0) <= MC_TOL_SE * mc.entropy_se_bits + 1e-9
    with pytest.raises(Exception, match="cannot be computed exactly"):
        string_entropy_bits(loads(text))  # why the sweep states an estimate


def test_default_string_targets_keep_their_file_text(tmp_path):
    """Derived grammars of the default quantity are written as before (the same text, so the
    same run ids for sweeps that already ran): no header field lines."""
    (tmp_path / "ab.cfg").write_text("S -> A A [1.0]\nA -> 'a' [0.5] | 'b' [0.5]\n")
    f = tmp_path / "s.toml"
    f.write_text('[base]\nepochs = 2\n[base.model]\npreset = "pythia-tiny"\n[[derive]]\n'
                 'grammar = "ab.cfg"\nentropy_bits = [1.5]\nmethod = "skew"\n')  # fmt: skip
    sw = load_sweep(f, out=tmp_path / "out")
    text = (sw.root / "grammars" / "ab_skew_H1.5.cfg").read_text()
    assert header_fields(text) == header_fields("")
    assert "Exact string entropy: 1.5" in text


def test_generated_grammars_get_the_generator_or_the_stated_family(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('[base]\nepochs = 2\n[base.model]\npreset = "pythia-tiny"\n'
                 '[[derive]]\ngenerator = "hierarchical"\nfamily = "paper"\np = [0.5, 0.9]\n'
                 'label = "hierarchical, p = {p}"\n'
                 '[[derive]]\nfamily = "random"\nalphabet_size = [2]\nlength = 4\n')  # fmt: skip
    sw = load_sweep(f, out=tmp_path / "out")
    got = {Path(k).name: v for k, v in read_labels(sw.root).items()}
    assert got == {
        "hierarchical_p0.5.cfg": {"family": "paper", "label": "hierarchical, p = 0.5"},
        "hierarchical_p0.9.cfg": {"family": "paper", "label": "hierarchical, p = 0.9"},
        "random_l2.cfg": {"family": "random"},
    }
    assert len(sw.grammars) == 3
