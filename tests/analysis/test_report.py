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
    NOT_ESTABLISHED,
    NOT_MEASURED,
    ONLY_STOPPED,
    PART,
    PARTLY,
    STOPPED,
    TIE,
    UNMEASURED,
    combine,
    config_id,
    context_line,
    event_median,
    forgetting_table,
    judge_all,
    judge_entropy_generalization,
    judge_entropy_memorization,
    judge_overlap,
    judge_same_loss,
    judge_sequential,
    judge_training_size,
    mark_duplicates,
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


def seeds(k=5, **kw):
    """k seeds of one cell, the same events in each."""
    return [run(seed=i, **kw) for i in range(k)]


def test_combine_branches():
    assert combine([]) == (NO_DATA, ())
    assert combine([("a", None)]) == (CENSORED, ())
    assert combine([("a", UNMEASURED)]) == (NOT_MEASURED, ())
    assert combine([("a", STOPPED)]) == (ONLY_STOPPED, ())
    assert combine([("a", True), ("b", None)]) == (HOLDS, ("a",))
    assert combine([("a", True), ("b", False)]) == (PARTLY, ("a",))
    assert combine([("a", True), ("b", TIE)]) == (PARTLY, ("a",))
    assert combine([("a", PART), ("b", False)]) == (PARTLY, ("a (in part)",))
    assert combine([("a", False), ("b", None)]) == (NOT, ())
    assert combine([("a", TIE), ("b", None)]) == (NOT_ESTABLISHED, ())


def test_event_median_counts_censored_seeds_as_late_and_takes_even_counts():
    # onsets 10, censored, censored -> median censored (None); 10, 20, censored -> 20
    assert event_median([run(onset=10), run(), run()], "memorization_onset") is None
    assert event_median([run(onset=10), run(onset=20), run()], "memorization_onset") == 20
    # an even count: the mean of the two middle values; censored when one of them is
    assert event_median([run(onset=10), run(onset=35)], "memorization_onset") == 22.5
    assert event_median([run(onset=10), run()], "memorization_onset") is None


# ----------------------------------------------------------------------------- overlap


@pytest.mark.parametrize(
    "rows,verdict",
    [
        (seeds(onset=10, gen_end=20), HOLDS),  # 5 of 5: one-sided sign test p = 1/32
        (seeds(onset=30, gen_end=20), NOT),
        (seeds(3, onset=10, gen_end=20), NOT_ESTABLISHED),  # 3 of 3: p = 1/8 > 0.05
        (seeds(2, onset=10, gen_end=20), NOT_ESTABLISHED),  # fewer than 3 seeds
        # 3 seeds one way, 2 the other: no direction
        (seeds(3, onset=10, gen_end=20) + [run(seed=s, onset=30, gen_end=20) for s in (3, 4)],
         NOT_ESTABLISHED),
        (seeds(onset=10, gen_end=20) + seeds(grammar="h", onset=30, gen_end=20), PARTLY),
        # an onset before a minimum still falling at E is an overlap: ordered
        (seeds(onset=10, gen_end=E), HOLDS),
        # both censored: no order
        (seeds(onset=None, gen_end=E), CENSORED),
        ([], NO_DATA),
    ],
)  # fmt: skip
def test_overlap_verdicts(rows, verdict):
    f = judge_overlap(table(*rows))
    assert f.verdict == verdict


def test_overlap_lines_give_the_test_and_the_effect():
    f = judge_overlap(table(*seeds(onset=10, gen_end=20)))
    (line,) = f.measured
    assert "sign test: 5 onset first, 0 onset later, 0 tied, 0 unknown" in line
    assert "p = 0.0312" in line and "median end - onset 10 [95% CI 10, 10]" in line


# ----------------------------------------------------------------------------- stopped runs


def test_stopped_runs_are_provisional_counted_apart_and_never_tested():
    stopped = [run(seed=s, onset=10, gen_end=20, status="running", last_epoch=26,
                   stage1_last_epoch=26) for s in range(5)]  # fmt: skip
    f = judge_overlap(table(*stopped))
    assert f.verdict == ONLY_STOPPED
    assert "5 stopped early at 26: provisional" in f.measured[0]
    assert "not tested" in f.measured[0]
    # beside finished runs they are neither seeds nor censored
    f = judge_overlap(table(*seeds(onset=10, gen_end=20), *stopped))
    assert f.verdict == NOT_ESTABLISHED or f.verdict == HOLDS
    text = context_line(table(*[dict(r, source="runs/big") for r in stopped]))
    assert "5 runs stopped early" in text and "big at epochs 26" in text


def test_stopped_run_events_are_lower_bounds():
    from grammarlab.analysis.phases import event_interval, event_status, format_event

    r = run(onset=10, gen_end=20, status="running", last_epoch=26, stage1_last_epoch=26)
    assert event_status(r, "memorization_onset") == ("censored", 10.0, 26)
    assert event_interval(r, "generalization_end") == (20.0, float("inf"))
    assert format_event(r, "generalization_end") == ">=20 (stopped at 26)"
    never = run(onset=None, status="running", last_epoch=26, stage1_last_epoch=26)
    assert format_event(never, "memorization_onset") == ">26 (stopped at 26)"
    assert event_interval(never, "memorization_onset") == (27.0, float("inf"))


# ----------------------------------------------------------------------------- one run, one vote


def test_config_id_is_the_sweep_hash():
    assert config_id("fig2/hierarchical_p0.5-n8-s0-b86b7324") == "b86b7324"
    assert config_id("fig2/manual_run") == "fig2/manual_run"


def _sourced(rows, folder):
    return [dict(r, run=f"{folder}/{r['run']}-{ord(r['grammar']):04x}{r['seed']:04x}",
                 source=f"runs/{folder}") for r in rows]  # fmt: skip


def test_the_same_runs_in_two_folders_vote_once():
    """Fake run folders of one sweep copied into a second sweep folder: the second copy is the
    same runs (same config hash), listed as such and not voted; the context counts them once."""
    a = _sourced(seeds(onset=10, gen_end=20), "sweep_a")
    b = _sourced(seeds(onset=10, gen_end=20), "sweep_b")
    other = _sourced(seeds(grammar="h", onset=30, gen_end=20), "sweep_b")
    alone = judge_all(table(*a, *other))[0]
    both = judge_all(table(*a, *b, *other))[0]
    assert both.verdict == alone.verdict == PARTLY
    assert both.n_cells == alone.n_cells == 2
    # one cell of five seeds, not ten
    assert [x for x in both.measured if x.startswith("m, g, 8")][0].count("5 of 5 seeds") == 2
    assert "15 rows: 10 distinct runs" in context_line(table(*a, *b, *other))


def test_stage1_of_a_sequential_run_counts_as_the_plain_run():
    plain = [dict(r, run=f"p/g-n8-s{r['seed']}-{r['seed']:08x}", source="p")
             for r in seeds(onset=10, gen_end=20)]  # fmt: skip
    seq = [dict(r, run=f"q/g-s{r['seed']}-{r['seed'] + 100:08x}", source="q", sequential=True)
           for r in seeds(onset=10, gen_end=20)]  # fmt: skip
    rows = []
    for p_, q_ in zip(plain, seq, strict=True):
        for e in range(3):
            for ds, v in (("train", 1.0 - 0.1 * e + p_["seed"]), ("test", 1.2)):
                rows.append({"run": p_["run"], "epoch": e, "stage": 1, "dataset": ds, "loss": v})
                rows.append({"run": q_["run"], "epoch": e, "stage": 1, "dataset": ds, "loss": v})
            rows.append({"run": q_["run"], "epoch": e + 3, "stage": 2, "dataset": "test",
                         "loss": 9.0})  # fmt: skip
    cu = pd.DataFrame(rows)
    marked = mark_duplicates(table(*plain, *seq), cu)
    assert list(marked["vote_id"][5:]) == list(marked["config_id"][:5])
    assert list(marked["duplicate_of"][5:]) == [r["run"] for r in plain]
    # a different stage 1 (one loss changed) is its own run
    cu2 = cu.copy()
    cu2.loc[(cu2.run == seq[0]["run"]) & (cu2.epoch == 1) & (cu2.dataset == "train"), "loss"] += (
        1e-9
    )
    assert mark_duplicates(table(*plain, *seq), cu2)["vote_id"][5] == marked["config_id"][5]


# ----------------------------------------------------------------------------- training size


def sizes(small, large, k=5):
    return [run(n=8, seed=s, **small) for s in range(k)] + \
        [run(n=64, seed=s, **large) for s in range(k)]  # fmt: skip


@pytest.mark.parametrize(
    "small,large,verdict",
    [
        (dict(onset=9, min_test=3.24), dict(onset=20, min_test=3.15), HOLDS),  # the paper's
        (dict(onset=20, min_test=3.0), dict(onset=9, min_test=3.2), NOT),
        (dict(onset=9, min_test=3.0), dict(onset=20, min_test=3.2), PARTLY),  # later, not lower
        # a censored onset of the larger n is later than an observed one
        (dict(onset=9, min_test=3.24), dict(onset=None, min_test=3.15), HOLDS),
        # equal onsets and losses: ties, no direction
        (dict(onset=9, min_test=3.0), dict(onset=9, min_test=3.0), NOT_ESTABLISHED),
        # both onsets censored, the larger n's minimum (an upper bound) higher: nothing ordered
        (dict(onset=None, min_test=3.0, gen_end=E), dict(onset=None, min_test=3.2, gen_end=E),
         CENSORED),
    ],
)  # fmt: skip
def test_training_size_verdicts(small, large, verdict):
    f = judge_training_size(table(*sizes(small, large)))
    assert f.verdict == verdict


def test_training_size_needs_two_sizes_and_three_seeds():
    assert judge_training_size(table(run(n=8, onset=5))).verdict == NO_DATA
    rows = sizes(dict(onset=9, min_test=3.24), dict(onset=20, min_test=3.15), k=2)
    f = judge_training_size(table(*rows))
    assert f.verdict == NOT_ESTABLISHED and "fewer than 3" in f.measured[0]


# ----------------------------------------------------------------------------- sequential


def seq_run(seed, m1=0.86, m2=0.75, share=0.8, jump=0.1, **kw):
    return run(
        seed=seed, onset=10, sequential=True, last_epoch=200, min_test=m1,
        regeneralization_epoch=150, regeneralization_test_loss=m2,
        regeneralization_censored=False, forgetting_share_final=share,
        forgetting_half_epoch=110 if share >= 0.5 else None,
        forgetting_half_censored=share < 0.5, switch_d1_loss_before=0.1, switch_d1_change=jump,
        **kw,
    )  # fmt: skip


def d1_curves(final=1.1, k=5):
    rows = []
    for s in range(k):
        rows += [{"run": f"g-n8-s{s}", "epoch": 200, "dataset": "d1", "loss": final}]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "kw,verdict",
    [
        (dict(), HOLDS),  # below the stage-1 minimum, 80% of D1's advantage lost
        (dict(m2=4.3, m1=3.36), PARTLY),  # forgets, never re-generalizes (the random grammar)
        (dict(m2=4.3, m1=3.36, share=0.2), NOT),
        # the D1 loss jumps by 0.9 of its whole rise (0.1 -> 1.1) in the first stage-2 step
        (dict(jump=0.9), PARTLY),
    ],
)
def test_sequential_verdicts(kw, verdict):
    # the stage-1 minima vary a little so that their standard error is not zero
    rows = [seq_run(s, **{**kw, "m1": kw.get("m1", 0.86) + 0.001 * s}) for s in range(5)]
    f = judge_sequential(table(*rows), d1_curves())
    assert f.verdict == verdict
    if kw.get("jump"):
        assert "optimizer shock" in f.notes[0]
        assert "median 90% of D1's stage-2 rise" in f.measured[0]


def test_sequential_needs_sequential_runs():
    assert judge_sequential(table(run(onset=3)), None).verdict == NO_DATA


def test_regeneralization_within_the_standard_error():
    # stage-1 minima 0.80 .. 0.84 (mean 0.82, SE = std / sqrt 5 = 0.0071); stage-2 minima at the
    # stage-1 minimum + 0.005: within its SE in every seed -> re-generalized
    rows = [seq_run(s, m1=0.80 + 0.01 * s, m2=0.805 + 0.01 * s) for s in range(5)]
    f = judge_sequential(table(*rows), None)
    assert f.verdict == HOLDS and "5 re-generalized, 0 not" in f.measured[0]
    rows = [seq_run(s, m1=0.80 + 0.01 * s, m2=0.82 + 0.01 * s) for s in range(5)]
    assert "0 re-generalized, 5 not" in judge_sequential(table(*rows), None).measured[0]


def test_forgetting_share_from_the_curves():
    """A sequential run without the share in its phases row: recomputed from its curves. End of
    stage 1: test 1.0, d1 0.2 (advantage 0.8); stage 2 ends at test 1.0, d1 0.8: 3/4 lost."""
    row = run(seed=0, sequential=True, last_epoch=4)
    rows = []
    for e, st, tr, te, d1 in ((0, 1, 1.0, 1.1, 1.0), (1, 1, 0.2, 1.0, 0.2), (2, 2, 0.5, 1.0, 0.3),
                               (3, 2, 0.3, 1.0, 0.7), (4, 2, 0.2, 1.0, 0.8)):  # fmt: skip
        for ds, v in (("train", tr), ("test", te), ("d1", d1), ("d2", tr)):
            rows.append({"run": row["run"], "epoch": e, "stage": st, "dataset": ds, "loss": v})
    got = forgetting_table(table(row), pd.DataFrame(rows))[row["run"]]
    assert got["forgetting_share_final"] == pytest.approx(0.75)
    # shares 1 - 0.7/0.8 = 0.125, 1 - 0.3/0.8 = 0.625, 0.75: half lost for good from epoch 3
    assert got["forgetting_half_epoch"] == 3


# ----------------------------------------------------------------------------- entropy


def entropy_rows(onsets, min_tests, excess=None, n=8, k=3):
    rows = []
    for i, (H, o, m) in enumerate(zip((10.0, 20.0, 30.0), onsets, min_tests, strict=True)):
        for s in range(k):
            extra = {} if excess is None else {"min_excess_test_bits": excess[i] + 0.01 * s}
            rows.append(run(grammar=f"random_{H:g}", n=n, seed=s, onset=o, min_test=m, H=H,
                            **extra))  # fmt: skip
    return rows


@pytest.mark.parametrize(
    "min_tests,excess,verdict",
    [
        ((1.0, 2.0, 3.0), (1.0, 2.0, 3.0), HOLDS),
        ((1.0, 2.0, 3.0), None, NOT_MEASURED),  # the raw loss alone is never judged
        ((3.0, 2.0, 1.0), (3.0, 2.0, 1.0), NOT),
        ((1.0, 2.0, 3.0), (3.0, 2.0, 1.0), NOT),  # the floor explains the loss order
        ((1.0, 2.0, 3.0), (1.0, 1.0, 1.0), NOT_ESTABLISHED),  # equal excess: a tie
    ],
)
def test_entropy_generalization_verdicts(min_tests, excess, verdict):
    f = judge_entropy_generalization(table(*entropy_rows((5, 4, 3), min_tests, excess)))
    assert f.verdict == verdict
    assert ("not measured" in f.measured[0]) is (excess is None)
    if excess is not None and verdict != NOT_ESTABLISHED:
        assert "excess per bit of entropy: Spearman rho" in f.measured[0]


def test_entropy_generalization_partly_by_n():
    rows = entropy_rows((5, 4, 3), (1, 2, 3), (1, 2, 3)) + \
        entropy_rows((5, 4, 3), (3, 2, 1), (3, 2, 1), n=64)  # fmt: skip
    f = judge_entropy_generalization(table(*rows))
    assert f.verdict == PARTLY and f.where == ("m, random, 8",)


@pytest.mark.parametrize(
    "onsets,verdict",
    [
        ((30, 20, 10), HOLDS),
        ((None, 20, 10), HOLDS),  # the lowest entropy never memorized: later than any onset
        ((10, 20, 30), NOT),
        ((2, 2, 2), NOT_ESTABLISHED),  # equal onsets are a tie, not an order
        ((None, None, None), CENSORED),
    ],
)
def test_entropy_memorization_verdicts(onsets, verdict):
    f = judge_entropy_memorization(table(*entropy_rows(onsets, (1.0, 2.0, 3.0))))
    assert f.verdict == verdict


def test_entropy_memorization_needs_three_seeds_per_grammar():
    f = judge_entropy_memorization(table(*entropy_rows((30, 20, 10), (1, 2, 3), k=2)))
    assert f.verdict == NOT_ESTABLISHED and "fewer than 3" in f.measured[0]


# ----------------------------------------------------------------------------- same loss


def loss_curves(small_test, large_test, k=5):
    """n = 8: train 2, 1, 0.5, 0.25; n = 64: train 2, 1.5, 1, 0.8. Test losses given."""
    rows = []
    for s in range(k):
        for n, train, test in ((8, (2, 1, 0.5, 0.25), small_test),
                               (64, (2, 1.5, 1, 0.8), large_test)):  # fmt: skip
            for e in range(4):
                for ds, v in (("train", train[e]), ("test", test[e])):
                    rows.append(
                        {
                            "run": f"g-n{n}-s{s}",
                            "model": "m",
                            "grammar": "g",
                            "n_train": n,
                            "epoch": e,
                            "dataset": ds,
                            "loss": float(v),
                        }
                    )
    return pd.DataFrame(rows)


def test_same_loss_holds_not_and_censored():
    ph = table(*sizes(dict(onset=1), dict(onset=2)))
    # n = 64 at its onset (epoch 2): train 1.0, test 1.06 (ratio 1.06). n = 8 reaches train <= 1.0
    # at epoch 1: test 1.5 -> ratio 1.5: rote at the same train loss, in every seed
    f = judge_same_loss(ph, loss_curves((2, 1.5, 1.5, 1.6), (2, 1.5, 1.06, 1.2)))
    assert f.verdict == HOLDS
    assert "median n = 8 ratio 1.500" in f.measured[0]
    # n = 8 at epoch 1: test 1.0 (ratio 1): lower than the large n's 1.06
    f = judge_same_loss(ph, loss_curves((2, 1.0, 0.6, 0.5), (2, 1.5, 1.06, 1.2)))
    assert f.verdict == NOT
    # higher in every seed, but by too little to be memorizing (1.08 < 1.05 + 0.05)
    f = judge_same_loss(ph, loss_curves((2, 1.08, 0.6, 0.5), (2, 1.5, 1.06, 1.2)))
    assert f.verdict == NOT_ESTABLISHED
    # the larger n never starts memorizing: no level
    f = judge_same_loss(table(*sizes(dict(onset=1), dict(onset=None))),
                        loss_curves((2, 1, 1, 1), (2, 2, 2, 2)))  # fmt: skip
    assert f.verdict == CENSORED
    assert judge_same_loss(ph, None).verdict == NO_DATA


# ----------------------------------------------------------------------------- the text


def test_markdown_has_every_claim_its_verdict_and_censored_cells():
    ph = table(*seeds(onset=10, gen_end=20), *seeds(grammar="h", onset=None, gen_end=E))
    findings = judge_all(ph, None)
    text = render_markdown(findings, ["runs/x"], "2 runs")
    assert text.startswith("# Findings")
    assert "`grammarlab report runs/x`" in text
    for f in findings:
        assert f"## {f.claim}" in text and f"| {f.claim} | {f.verdict} |" in text
    # overlap: g holds, h censored -> holds, with 1 of 2 cells not judged
    assert "**Verdict: holds**; 1 of 2 cells not judged (censored)" in text


def test_cli_report_writes_markdown_and_tables(tmp_path, monkeypatch, capsys):
    import grammarlab.analysis.tables as tables_mod
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
    a = [dict(run(seed=s, onset=5, gen_end=20), source="runs/big_vocab") for s in range(5)]
    b = [dict(run(seed=s, onset=1, gen_end=0), source="runs/small_vocab/") for s in range(5)]
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


def test_cli_merges_floors_csv_beside_saved_tables(tmp_path, capsys):
    """Saved tables with a floors.csv: the floor-corrected onset is computed from the curves and
    the grammar's losses, and the report has its section."""
    from grammarlab.cli import main

    saved = tmp_path / "results" / "sweep"
    saved.mkdir(parents=True)
    rows, curves = [], []
    for s in range(3):
        rid = f"g-n8-s{s}-{s:08x}"
        rows.append({**run(seed=s, onset=1, gen_end=0), "run": rid, "status": "done",
                     "last_epoch": 3, "stage1_last_epoch": 3})  # fmt: skip
        # train 1, test 1.0, 1.1, 1.2, 1.3 -> raw onset 1; G_test / G_train 1.1 -> corrected 2
        for e, te in enumerate((1.0, 1.1, 1.2, 1.3)):
            curves += [
                {"run": rid, "epoch": e, "stage": 1, "dataset": "train", "loss": 1.0},
                {"run": rid, "epoch": e, "stage": 1, "dataset": "test", "loss": te},
            ]
    pd.DataFrame(rows).to_csv(saved / "phases.csv", index=False)
    pd.DataFrame(curves).to_csv(saved / "curves.csv", index=False)
    pd.DataFrame([{"run": r["run"], "grammar_train_loss": 1.0, "grammar_test_loss": 1.1 + 0.01 * i,
                   "floor_ratio": 1.1 + 0.01 * i} for i, r in enumerate(rows)]).to_csv(
        saved / "floors.csv", index=False)  # fmt: skip
    out = tmp_path / "f.md"
    assert main(["report", str(saved), "-o", str(out), "--tables", str(tmp_path / "t")]) == 0
    text = out.read_text()
    assert "## Floor-corrected onset" in text and "## How the verdicts are reached" in text
    ph = pd.read_csv(tmp_path / "t" / "report_phases.csv")
    assert list(ph["floor_corrected_onset_epoch"]) == [2, 2, 2]


def test_cli_counts_run_folders_copied_into_two_sweep_folders_once(tmp_path, capsys):
    """Fake run folders of one sweep, copied into a second sweep folder (the same run ids, whose
    last 8 hex digits are the config hash): the report counts each run once."""
    import shutil

    from grammarlab.cli import main
    from tests.analysis.run_folders import write_run

    a = tmp_path / "sweep_a"
    for s in range(3):
        write_run(a / f"ab-n2-s{s}-0000000{s}", seed=s)
    shutil.copytree(a, tmp_path / "sweep_b")
    out = tmp_path / "f.md"
    assert main(["report", str(a), str(tmp_path / "sweep_b"), "-o", str(out)]) == 0
    text = out.read_text()
    assert "6 rows: 3 distinct runs" in text
    overlap = text.split("## Two overlapping phases", 1)[1].split("**Verdict", 1)[0]
    assert overlap.count("3 of 3 seeds observed") == 2  # onset and end, one cell of 3 seeds
    assert sum(line.startswith("- ") for line in overlap.splitlines()) == 1
