"""Sweep specs: grid expansion, derived grammars, stable run ids, user errors in the grid."""

from __future__ import annotations

from pathlib import Path

import pytest

from grammarlab.errors import GrammarlabError
from grammarlab.sweep.spec import expand, load_sweep
from tests.sweep.fake_trainer import AB, ids, write_sweep


def test_grid_is_cartesian_product_with_dotted_and_table_values(tmp_path):
    f = write_sweep(tmp_path, 'n_train = [8, 64]\nseed = [0, 1, 2]\n"model.hidden_size" = [32]\n'
                              'lora = [{rank = 0}, {rank = 4}]\n')  # fmt: skip
    sw = load_sweep(f, out=tmp_path / "out")
    assert len(sw.runs) == 2 * 3 * 1 * 2
    got = {(r.config.n_train, r.config.seed, r.config.lora.rank) for r in sw.runs}
    assert got == {(n, s, k) for n in (8, 64) for s in (0, 1, 2) for k in (0, 4)}
    assert all(r.config.model.hidden_size == 32 and r.config.epochs == 6 for r in sw.runs)
    assert all(r.config.model.preset == "pythia-tiny" for r in sw.runs)  # table merged, kept
    assert len(set(ids(sw))) == 12 and all(r.run_dir.parent == tmp_path / "out" for r in sw.runs)
    # readable part: the varying axes only (hidden_size has one value)
    first = sw.runs[0].run_id
    assert first.startswith("n8-s0-") and "hidden_size" not in first


def test_derived_family_grammars(tmp_path):
    spec = {"base": {"epochs": 3}, "derive": [{"family": "hierarchical", "p": [0.5, 0.9]},
            {"family": "random", "alphabet_size": [2, 7], "length": 4}]}  # fmt: skip
    sw = expand(spec, tmp_path / "sw")
    files = sorted(p.name for p in (tmp_path / "sw" / "grammars").glob("*.cfg"))
    assert files == ["hierarchical_p0.5.cfg", "hierarchical_p0.9.cfg",
                     "random_l2.cfg", "random_l7.cfg"]  # fmt: skip
    assert len(sw.runs) == 4
    assert {Path(r.config.grammar).name for r in sw.runs} == set(files)
    assert "0.9" in (tmp_path / "sw" / "grammars" / "hierarchical_p0.9.cfg").read_text()


def test_derived_entropy_targets(tmp_path):
    from grammarlab.grammar.entropy import analyze
    from grammarlab.grammar.load import load

    (tmp_path / "ab.cfg").write_text(AB)
    # tempering keeps a uniform grammar uniform; skewing lowers its 2 bits
    derive = [{"grammar": "ab.cfg", "entropy_bits": [1.0, 1.5], "method": "skew"}]
    spec = {"base": {"epochs": 3}, "derive": derive}
    sw = expand(spec, tmp_path / "sw", base_dir=tmp_path)
    assert len(sw.runs) == 2
    for r, target in zip(sw.runs, (1.0, 1.5), strict=True):
        assert Path(r.config.grammar).parent == tmp_path / "sw" / "grammars"
        bits = analyze(load(r.config.grammar)).to_dict()["entropy_bits"]
        assert abs(bits - target) < 1e-4


def test_run_ids_stable_and_sensitive(tmp_path):
    f = write_sweep(tmp_path, "n_train = [8, 64]\n")
    a = ids(load_sweep(f, out=tmp_path / "o"))
    assert a == ids(load_sweep(f, out=tmp_path / "o"))  # stable
    # an explicit default gives the same resolved config, hence the same id
    f2 = write_sweep(tmp_path, "n_train = [8, 64]\n", base_extra="seed = 0")
    assert ids(load_sweep(f2, out=tmp_path / "o")) == a
    for extra in ("lr = 0.002", "n_random = 3", "seed = 5"):  # any config value
        f3 = write_sweep(tmp_path, "n_train = [8, 64]\n", base_extra=extra)
        b = ids(load_sweep(f3, out=tmp_path / "o"))
        assert all(x != y for x, y in zip(a, b, strict=True)), extra
    # grammar content: edit the file -> new ids; same text elsewhere -> same ids
    f = write_sweep(tmp_path, "n_train = [8, 64]\n")
    (tmp_path / "ab.cfg").write_text(AB.replace("[0.5] | 'b' [0.5]", "[0.25] | 'b' [0.75]"))
    assert all(x != y for x, y in zip(a, ids(load_sweep(f, out=tmp_path / "o")), strict=True))
    (tmp_path / "ab.cfg").write_text(AB)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "ab.cfg").write_text(AB)
    f.write_text(f.read_text().replace('"ab.cfg"', '"sub/ab.cfg"'))
    assert ids(load_sweep(f, out=tmp_path / "o")) == a


def test_bad_grid_is_a_user_error(tmp_path):
    with pytest.raises(GrammarlabError, match="non-empty list"):
        load_sweep(write_sweep(tmp_path, "n_train = 8\n"), out=tmp_path / "o")
    with pytest.raises(GrammarlabError, match="n_train"):
        load_sweep(write_sweep(tmp_path, "n_train = [0]\n"), out=tmp_path / "o")
