"""The findings report on small fake tables whose verdicts are known by construction: every
claim is driven into each of its verdict branches."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from grammarlab.analysis.report import (
    CENSORED,
    HOLDS,
    NO_DATA,
    NOT,
    PART,
    PARTLY,
    combine,
    event_median,
    judge_all,
    judge_entropy_generalization,
    judge_entropy_memorization,
    judge_overlap,
    judge_same_loss,
    judge_sequential,
    judge_training_size,
    notes_marker,
    render_markdown,
    separate_sources,
    with_notes,
)

E = 100  # last epoch of every fake run
DOCS = Path(__file__).resolve().parents[2] / "docs"


def run(grammar="g", n=8, seed=0, onset=None, gen_end=50, min_test=1.0, H=10.0, **kw):
    """A phases row: onset None = censored (>E); gen_end == E = right-censored (>=E)."""
    row = {
        "run": f"{grammar}-n{n}-s{seed}", "model": "m", "grammar": grammar, "n_train": n,
        "seed": seed, "entropy_bits": H, "last_epoch": E, "stage1_last_epoch": E,
        "memorization_onset_epoch": onset, "memorization_onset_censored": onset is None,
        "generalization_end_epoch": gen_end, "generalization_end_censored": gen_end == E,
        "min_test_loss": min_test,
        "overlap": onset is not None and gen_end != E and onset < gen_end,
        "overlap_censored": onset is not None and gen_end == E,
    }  # fmt: skip
    row.update(kw)
    return row


def table(*rows):
    return pd.DataFrame(list(rows))


def test_combine_branches():
    assert combine([]) == (NO_DATA, ())
    assert combine([("a", None)]) == (CENSORED, ())
    assert combine([("a", True), ("b", None)]) == (HOLDS, ("a",))
    assert combine([("a", True), ("b", False)]) == (PARTLY, ("a",))
    assert combine([("a", PART), ("b", False)]) == (PARTLY, ("a (in part)",))
    assert combine([("a", False), ("b", None)]) == (NOT, ())


def test_event_median_counts_censored_seeds_as_late():
    # onsets 10, censored, censored -> median censored (None); 10, 20, censored -> 20
    assert event_median([run(onset=10), run(), run()], "memorization_onset") is None
    assert event_median([run(onset=10), run(onset=20), run()], "memorization_onset") == 20


# ----------------------------------------------------------------------------- overlap


@pytest.mark.parametrize(
    "rows,verdict",
    [
        ([run(onset=10, gen_end=20), run(seed=1, onset=12, gen_end=30)], HOLDS),
        ([run(onset=30, gen_end=20), run(seed=1, onset=40, gen_end=30)], NOT),
        # one grammar overlaps, the other does not
        ([run(onset=10, gen_end=20), run(grammar="h", onset=30, gen_end=20)], PARTLY),
        # gen end still falling at E in every seed: an overlap the data cannot confirm
        ([run(onset=10, gen_end=E), run(seed=1, onset=12, gen_end=E)], CENSORED),
        ([], NO_DATA),
    ],
)
def test_overlap_verdicts(rows, verdict):
    f = judge_overlap(table(*rows))
    assert f.verdict == verdict


def test_overlap_lines_count_censored_seeds():
    f = judge_overlap(table(run(onset=10, gen_end=20), run(seed=1, onset=5, gen_end=E)))
    (line,) = f.measured
    assert "overlap in 1 of 1 seeds with both observed (1 more only with a censored" in line
    assert "1 censored >=100" in line


# ----------------------------------------------------------------------------- training size


@pytest.mark.parametrize(
    "small,large,verdict",
    [
        (dict(onset=9, min_test=3.24), dict(onset=20, min_test=3.15), HOLDS),  # the paper's
        (dict(onset=20, min_test=3.0), dict(onset=9, min_test=3.2), NOT),
        (dict(onset=9, min_test=3.0), dict(onset=20, min_test=3.2), PARTLY),  # later, not lower
        # a censored onset of the larger n is later than an observed one
        (dict(onset=9, min_test=3.24), dict(onset=None, min_test=3.15), HOLDS),
        # both onsets censored, and the larger n's (censored) minimum is higher: nothing judged
        (dict(onset=None, min_test=3.0, gen_end=E), dict(onset=None, min_test=3.2, gen_end=E),
         CENSORED),
    ],
)  # fmt: skip
def test_training_size_verdicts(small, large, verdict):
    f = judge_training_size(table(run(n=8, **small), run(n=64, **large)))
    assert f.verdict == verdict


def test_training_size_needs_two_sizes():
    assert judge_training_size(table(run(n=8, onset=5))).verdict == NO_DATA


# ----------------------------------------------------------------------------- sequential


def seq_run(seed, forgetting, plateau=3, regen=120, jump=0.1, **kw):
    return run(
        seed=seed, onset=10, sequential=True, last_epoch=200, regeneralization_epoch=regen,
        regeneralization_censored=regen == 200, d1_plateau_count=plateau,
        forgetting_epoch=forgetting, forgetting_censored=forgetting is None,
        switch_d1_loss_before=0.1, switch_d1_change=jump, **kw,
    )  # fmt: skip


def d1_curves(final=1.1):
    rows = []
    for s in range(2):
        rows += [{"run": f"g-n8-s{s}", "epoch": 200, "dataset": "d1", "loss": final}]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "rows,verdict",
    [
        ([seq_run(0, 150), seq_run(1, 160)], HOLDS),
        ([seq_run(0, None, plateau=0), seq_run(1, None, plateau=0)], CENSORED),
        ([seq_run(0, 150, plateau=0), seq_run(1, None, plateau=0)], NOT),
        # the D1 loss jumps by 0.9 of its whole rise (0.1 -> 1.1) in the first stage-2 step
        ([seq_run(0, 150, jump=0.9), seq_run(1, 160, jump=0.9)], PARTLY),
        ([run(onset=3)], NO_DATA),  # no sequential runs
    ],
)
def test_sequential_verdicts(rows, verdict):
    f = judge_sequential(table(*rows), d1_curves())
    assert f.verdict == verdict
    if verdict == PARTLY:
        assert "optimizer shock" in f.notes[0]
        assert "median 90% of D1's stage-2 rise" in f.measured[0]


# ----------------------------------------------------------------------------- entropy


def entropy_rows(onsets, min_tests, excess=None, n=8):
    rows = []
    for i, (H, o, m) in enumerate(zip((10.0, 20.0, 30.0), onsets, min_tests, strict=True)):
        extra = {} if excess is None else {"min_excess_test_bits": excess[i]}
        rows.append(run(grammar=f"random_{H:g}", n=n, onset=o, min_test=m, H=H, **extra))
    return rows


@pytest.mark.parametrize(
    "min_tests,excess,verdict",
    [
        ((1.0, 2.0, 3.0), (1.0, 2.0, 3.0), HOLDS),
        ((1.0, 2.0, 3.0), None, HOLDS),  # excess not measured: the loss alone
        ((3.0, 2.0, 1.0), (3.0, 2.0, 1.0), NOT),
        ((1.0, 2.0, 3.0), (3.0, 2.0, 1.0), NOT),  # the floor explains the loss order
    ],
)
def test_entropy_generalization_verdicts(min_tests, excess, verdict):
    f = judge_entropy_generalization(table(*entropy_rows((5, 4, 3), min_tests, excess)))
    assert f.verdict == verdict
    # missing measures are said to be missing, not censored
    assert ("excess rises with H: not measured" in f.measured[0]) is (excess is None)


def test_entropy_generalization_partly_by_n():
    rows = entropy_rows((5, 4, 3), (1.0, 2.0, 3.0)) + entropy_rows((5, 4, 3), (3, 2, 1), n=64)
    f = judge_entropy_generalization(table(*rows))
    assert f.verdict == PARTLY and f.where == ("m, random, 8",)


@pytest.mark.parametrize(
    "onsets,verdict",
    [
        ((30, 20, 10), HOLDS),
        ((None, 20, 10), HOLDS),  # the lowest entropy never memorized: later than any onset
        ((10, 20, 30), NOT),
        ((None, None, 10), CENSORED),  # two censored grammars cannot be ordered
    ],
)
def test_entropy_memorization_verdicts(onsets, verdict):
    f = judge_entropy_memorization(table(*entropy_rows(onsets, (1.0, 2.0, 3.0))))
    assert f.verdict == verdict


# ----------------------------------------------------------------------------- same loss


def loss_curves(small_test, large_test):
    """n = 8: train 2, 1, 0.5, 0.25; n = 64: train 2, 1.5, 1, 0.8. Test losses given."""
    rows = []
    for n, train, test in ((8, (2, 1, 0.5, 0.25), small_test), (64, (2, 1.5, 1, 0.8), large_test)):
        for e in range(4):
            for ds, v in (("train", train[e]), ("test", test[e])):
                rows.append({"run": f"g-n{n}-s0", "model": "m", "grammar": "g", "n_train": n,
                             "epoch": e, "dataset": ds, "loss": float(v)})  # fmt: skip
    return pd.DataFrame(rows)


def test_same_loss_holds_not_and_censored():
    ph = table(run(n=8, onset=1), run(n=64, onset=2))
    # n = 64 at its onset (epoch 2): train 1.0, test 1.06 (ratio 1.06). n = 8 reaches train <= 1.0
    # at epoch 1: test 1.5 -> ratio 1.5 > 1.05: rote at the same train loss
    f = judge_same_loss(ph, loss_curves((2, 1.5, 1.5, 1.6), (2, 1.5, 1.06, 1.2)))
    assert f.verdict == HOLDS
    assert "test/train 1.500" in f.measured[0]
    # n = 8 at epoch 1: test 1.0 (ratio 1): not memorizing at that train loss
    f = judge_same_loss(ph, loss_curves((2, 1.0, 0.6, 0.5), (2, 1.5, 1.06, 1.2)))
    assert f.verdict == NOT
    # the larger n never starts memorizing: no level
    f = judge_same_loss(
        table(run(n=8, onset=1), run(n=64)), loss_curves((2, 1, 1, 1), (2, 2, 2, 2))
    )
    assert f.verdict == CENSORED
    assert judge_same_loss(ph, None).verdict == NO_DATA


# ----------------------------------------------------------------------------- the text


def test_markdown_has_every_claim_its_verdict_and_censored_cells():
    ph = table(run(onset=10, gen_end=20), run(grammar="h", onset=10, gen_end=E))
    findings = judge_all(ph, None)
    text = render_markdown(findings, ["runs/x"], "2 runs")
    assert text.startswith("# Findings")
    assert "`grammarlab report runs/x`" in text
    for f in findings:
        assert f"## {f.claim}" in text and f"| {f.claim} | {f.verdict} |" in text
    # overlap: g holds, h censored -> holds, with 1 of 2 cells not judged
    assert "**Verdict: holds**; 1 of 2 cells not judged (censored)" in text


def test_cli_report_writes_markdown_and_tables(tmp_path, monkeypatch, capsys):
    import grammarlab.sweep.tables as tables_mod
    from grammarlab.cli import main

    monkeypatch.setattr(tables_mod, "_entropy_of_text", lambda text, src, notes: 10.0)
    import json

    for n in (8, 64):
        r = tmp_path / "runs" / f"g-n{n}"
        r.mkdir(parents=True)
        (r / "grammar.cfg").write_text("S -> 'a' [1.0]\n")
        (r / "config.toml").write_text(f'grammar = "/x/g.cfg"\nn_train = {n}\nseed = 0\n')
        recs = [{"epoch": e, "train_loss": 2.0 / (1 + e), "test_loss": 2.0 / (1 + e) + 0.1 * e}
                for e in range(10)]  # fmt: skip
        (r / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in recs))
    out = tmp_path / "docs" / "findings.md"
    assert main(["report", str(tmp_path / "runs"), "-o", str(out), "--tables",
                 str(tmp_path / "t")]) == 0  # fmt: skip
    text = out.read_text()
    assert "## Two overlapping phases" in text
    assert (tmp_path / "t" / "report_phases.csv").is_file()
    assert "wrote" in capsys.readouterr().out


def test_sources_with_the_same_cell_and_seed_are_not_pooled():
    """Two sweeps of one model name (e.g. with and without extra vocabulary) ran the same
    (grammar, n, seed): each becomes its own model; distinct seeds across sources pool."""
    a = [dict(run(seed=s, onset=5, gen_end=20), source="runs/big_vocab") for s in (0, 1)]
    b = [dict(run(seed=s, onset=1, gen_end=0), source="runs/small_vocab/") for s in (0, 1)]
    ph, cu = separate_sources(table(*a, *b), table(*[dict(r, dataset="test") for r in a]))
    assert sorted(set(ph["model"])) == ["m [big_vocab]", "m [small_vocab]"]
    assert set(cu["model"]) == {"m [big_vocab]"}
    f = judge_overlap(ph)
    assert f.verdict == PARTLY and f.where == ("m [big_vocab], g, 8",)
    pooled = table(dict(run(seed=0), source="x"), dict(run(seed=1), source="y"))
    assert list(separate_sources(pooled)[0]["model"]) == ["m", "m"]


def test_notes_follow_the_report_verbatim_after_a_rule_and_a_marker():
    report, notes = "# Findings\n\ntext\n", "## By hand\n\n| a | b |\n`x`  <!-- y -->"
    text = with_notes(report, notes, "my notes.md")
    assert text.startswith(report) and text.endswith(notes)  # neither side altered
    assert text == report + "\n---\n\n" + notes_marker("my notes.md") + "\n\n" + notes
    marker = notes_marker("my notes.md")
    assert "\n" not in marker and "`grammarlab report --notes my notes.md`" in marker


def test_docs_findings_md_is_a_generated_report_with_findings_notes_md_appended():
    """docs/findings.md = the report's generated part + docs/findings_notes.md, byte for byte, as
    `grammarlab report ... --notes docs/findings_notes.md` writes it: edit the notes file, then
    regenerate (or re-append), never the notes inside findings.md."""
    text = (DOCS / "findings.md").read_text(encoding="utf-8")
    notes = (DOCS / "findings_notes.md").read_text(encoding="utf-8")
    marker = notes_marker("docs/findings_notes.md")
    assert text.count(marker) == 1
    generated = text[: text.index("\n---\n\n" + marker)]
    assert with_notes(generated, notes, "docs/findings_notes.md") == text
    assert generated.startswith("# Findings") and "Generated by `grammarlab report " in generated
    assert "written by hand" not in generated and notes.startswith("## Notes written by hand")


def test_docs_findings_md_regenerates_from_the_committed_tables(tmp_path, monkeypatch):
    """The command in findings.md's header, run on the tables committed in experiments/results/,
    writes findings.md again byte for byte: the report is reproducible from the repository."""
    from grammarlab.cli import main

    root = DOCS.parent
    text = (DOCS / "findings.md").read_text(encoding="utf-8")
    command = text.split("Generated by `grammarlab report ", 1)[1].split("`", 1)[0].split()
    assert all(p.startswith("experiments/results/") for p in command)
    monkeypatch.chdir(root)
    out = tmp_path / "findings.md"
    notes = "docs/findings_notes.md"
    assert main(["report", *command, "-o", str(out), "--notes", notes]) == 0
    assert out.read_text(encoding="utf-8") == text
