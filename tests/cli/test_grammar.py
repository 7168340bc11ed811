"""``grammarlab grammar ...`` as a hostile user runs it: every mistake is one ``error:`` line
with a hint and exit status 2 (argparse's flag errors too), never a traceback; sampling streams;
long chains work."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from hand_grammars import SMALL

import grammarlab.cli.grammar as cli_grammar
from grammarlab.cli import main
from grammarlab.grammar.families import hierarchical_grammar
from grammarlab.grammar.load import load
from grammarlab.grammar.sample import sample
from grammarlab.grammar.strings import format_strings

GRAMMARS = Path(__file__).resolve().parents[2] / "grammars"
RECURSIVE = "S -> 'a' S S [0.3] | 'b' [0.7]\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``grammarlab grammar ARGV``."""
    try:
        rc = main(["grammar", *argv])
    except SystemExit as e:  # argparse refuses bad flag values this way
        rc = e.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def one_error(err: str, *parts: str) -> None:
    """Exactly one ``error:`` line, naming every one of ``parts``."""
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1, err
    for p in parts:
        assert p in lines[0], (p, err)


@pytest.fixture
def small(tmp_path: Path) -> Path:
    f = tmp_path / "small.cfg"
    f.write_text(SMALL)
    return f


# --- sample: streamed, and the same strings as the library


@pytest.mark.parametrize("text", [SMALL, RECURSIVE])
def test_sample_writes_the_strings_of_sample(tmp_path: Path, capsys, text: str) -> None:
    f = tmp_path / "g.cfg"
    f.write_text(text)
    n = 70_000  # more than one batch of 65,536
    rc, _, _ = run(capsys, "sample", str(f), "-n", str(n), "--seed", "4", "-o", str(tmp_path / "o"))
    assert rc == 0
    expected = format_strings(sample(load(f), n, np.random.default_rng(4)))
    assert (tmp_path / "o").read_text() == expected


def test_sample_to_stdout(small: Path, capsysbinary) -> None:
    assert main(["grammar", "sample", str(small), "-n", "50", "--seed", "1"]) == 0
    out = capsysbinary.readouterr().out.decode()
    assert out == format_strings(sample(load(small), 50, np.random.default_rng(1)))


def test_sample_unique_is_bounded(small: Path, capsys, monkeypatch) -> None:
    rc, out, _ = run(capsys, "sample", str(small), "-n", "9", "--unique")
    assert rc == 0 and len(set(out.splitlines())) == 9
    monkeypatch.setattr(cli_grammar, "MAX_UNIQUE", 5)
    rc, out, err = run(capsys, "sample", str(small), "-n", "6", "--unique")
    assert rc == 2 and out == ""
    one_error(err, "--unique", "-n 6", "at most 5")


def test_unique_help_says_it_is_not_constant_memory(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["grammar", "sample", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "not constant-memory" in text and "constant for any -n" in text
    assert "exit status" in text


# --- bad files and paths


def test_grammar_file_is_a_directory(tmp_path: Path, capsys) -> None:
    for cmd in (["info"], ["sample", "-n", "1"], ["score"]):
        rc, _, err = run(capsys, *cmd, str(tmp_path))
        assert rc == 2
        one_error(err, str(tmp_path), "is a directory")
    rc, _, err = run(capsys, "check", str(tmp_path))
    assert rc == 1 and "is a directory" in err


def test_unreadable_grammar_file(small: Path, capsys, monkeypatch) -> None:
    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_text", refuse)  # tests may run as root, so no chmod
    rc, _, err = run(capsys, "info", str(small))
    assert rc == 2
    one_error(err, str(small), "cannot read the grammar file: Permission denied")


def test_grammar_file_with_byte_order_mark(tmp_path: Path, capsys) -> None:
    f = tmp_path / "bom.cfg"
    f.write_bytes(b"\xef\xbb\xbf" + SMALL.encode())
    assert load(f).start == "S"
    rc, out, _ = run(capsys, "sample", str(f), "-n", "3")
    assert rc == 0 and len(out.splitlines()) == 3


def test_binary_grammar_file(tmp_path: Path, capsys) -> None:
    f = tmp_path / "bin.cfg"
    f.write_bytes(b"S -> 'a' [1.0]\n\xff\xfe\x00")
    rc, _, err = run(capsys, "check", str(f))
    assert rc == 1
    one_error(err, str(f), "not a UTF-8 text file")


@pytest.mark.parametrize("cmd", ["sample", "tune", "new"])
def test_out_is_a_directory_or_unwritable(tmp_path: Path, small: Path, capsys, cmd: str) -> None:
    args = {
        "sample": ["sample", str(small), "-n", "2"],
        "tune": ["tune", str(GRAMMARS / "hierarchical_p075.cfg"), "--target-bits", "25"],
        "new": ["new", "hierarchical"],
    }[cmd]
    rc, _, err = run(capsys, *args, "-o", str(tmp_path))
    assert rc == 2
    one_error(err, "--out", str(tmp_path), "is a directory")
    blocker = tmp_path / "file"
    blocker.write_text("")
    rc, _, err = run(capsys, *args, "-o", str(blocker / "out.txt"))  # a folder that is a file
    assert rc == 2
    one_error(err, "--out", "cannot write")


@pytest.mark.parametrize(
    "argv",
    [
        ["sample", "G", "-n", "3", "--seed", "-1"],
        ["sample", "G", "-n", "-3"],
        ["sample", "G", "-n", "many"],
        ["info", "G", "--seed", "-1"],
        ["info", "G", "--mc-samples", "1"],
    ],
)
def test_bad_flag_values(small: Path, capsys, argv: list[str]) -> None:
    argv = [str(small) if a == "G" else a for a in argv]
    rc, out, err = run(capsys, *argv)
    assert rc == 2 and out == ""
    one_error(err, "argument", "expected an integer >=")


# --- score


def test_score_with_stdin_closed(small: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdin", None)  # what Python gives a process started with <&-
    rc, _, err = run(capsys, "score", str(small))
    assert rc == 2
    one_error(err, "stdin is closed")


def test_score_binary_strings_file(tmp_path: Path, small: Path, capsys) -> None:
    f = tmp_path / "bin.txt"
    f.write_bytes(b"a c\n\x89PNG\r\n\x1a\n\x00")
    rc, _, err = run(capsys, "score", str(small), str(f))
    assert rc == 2
    one_error(err, f"{f}:2", "not a UTF-8 text file")


def test_score_strings_with_byte_order_mark(tmp_path: Path, small: Path, capsys) -> None:
    f = tmp_path / "s.txt"
    f.write_bytes(b"\xef\xbb\xbfy\n")
    rc, out, _ = run(capsys, "score", str(small), str(f))
    # P(y) = 0.09 by hand (hand_grammars.SMALL): -log2 0.09 bits; 1e-9 is far above rounding
    assert rc == 0 and abs(float(out) - 3.4739311883324122) < 1e-9


def test_score_out_of_memory_is_a_message(small: Path, tmp_path: Path, capsys, monkeypatch):
    # The engine's own guard is a GrammarlabError; an allocation that fails anyway is caught too.
    def oom(g, strings):
        raise MemoryError

    monkeypatch.setattr(cli_grammar, "surprisal_bits", oom)
    f = tmp_path / "s.txt"
    f.write_text("a c\n" + " ".join(["a"] * 1000) + "\n")
    rc, _, err = run(capsys, "score", str(small), str(f))
    assert rc == 2
    one_error(err, str(f), "more memory", "1,000 tokens")


# --- tune


def test_tune_to_zero_bits_blames_the_target(capsys, tmp_path: Path) -> None:
    base = GRAMMARS / "hierarchical_p050.cfg"
    rc, _, err = run(
        capsys,
        "tune",
        str(base),
        "--target-bits",
        "0",
        "--method",
        "skew",
        "-o",
        str(tmp_path / "t"),
    )
    assert rc == 2
    one_error(err, "target 0 bits", "lam = 1", "probability 0")
    assert f"{base}:" not in err  # the valid input file is not blamed
    assert not (tmp_path / "t").exists()


def test_tune_warns_when_the_expected_length_grows(tmp_path: Path, capsys) -> None:
    # Tempering S -> 'a' S S [0.3] | 'b' [0.7] toward uniform raises the expected length from
    # 2.5 tokens (by hand: L = 0.3 (1 + 2L) + 0.7) to about the target entropy in bits.
    base = tmp_path / "rec.cfg"
    base.write_text(RECURSIVE)
    out = tmp_path / "t.cfg"
    rc, _, err = run(capsys, "tune", str(base), "--target-bits", "30", "-o", str(out))
    assert rc == 0 and "warning" not in err  # about 30 tokens: below the default 256
    header = load(out).header
    assert "Expected length: 30.02" in header and "(base grammar: 2.5)" in header
    rc, _, err = run(
        capsys, "tune", str(base), "--target-bits", "30", "--warn-length", "20", "-o", str(out)
    )
    assert rc == 0
    warnings = [ln for ln in err.splitlines() if "warning:" in ln]
    assert len(warnings) == 1 and "30.02" in warnings[0] and "bound of 20 tokens" in warnings[0]


# --- long chains


def test_info_on_a_chain_of_450_nonterminals(tmp_path: Path, capsys) -> None:
    f = tmp_path / "chain.cfg"
    rc, _, _ = run(capsys, "new", "random", "--alphabet-size", "2", "--length", "450", "-o", str(f))
    assert rc == 0
    rc, out, _ = run(capsys, "info", str(f))
    assert rc == 0
    assert "min 450, expected 450, max 450" in out
    assert "450 bits/string [exact: unambiguous]" in out


def test_check_and_info_on_a_chain_of_10000_nonterminals(tmp_path: Path, capsys) -> None:
    # 3^10,000 strings: an exact count of 4,772 digits, past Python's default printing limit
    rules = ["S -> A1 [1.0]"]
    rules += [
        f"A{i} -> 'a' A{i + 1} [0.5] | 'b' A{i + 1} [0.25] | 'c' A{i + 1} [0.25]"
        for i in range(1, 10_000)
    ]
    rules.append("A10000 -> 'a' [0.5] | 'b' [0.25] | 'c' [0.25]")
    f = tmp_path / "chain.cfg"
    f.write_text("\n".join(rules) + "\n")
    assert run(capsys, "check", str(f))[0] == 0
    rc, out, _ = run(capsys, "info", "--json", str(f))
    assert rc == 0
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        digits = str(3**10_000)
    finally:
        sys.set_int_max_str_digits(limit)
    assert len(digits) == 4_772 and f'"n_strings": {digits},' in out
    # 1.5 bits per position (0.5, 0.25, 0.25), 10,000 positions: a sum of exact binary fractions
    assert '"entropy_bits": 15000.0,' in out


def test_hierarchical_header_is_unchanged_by_the_cli(tmp_path: Path, capsys) -> None:
    # `new` writes exactly what the library returns
    rc, _, _ = run(capsys, "new", "hierarchical", "-p", "0.75", "-o", str(tmp_path / "h.cfg"))
    assert rc == 0
    assert (tmp_path / "h.cfg").read_text() == hierarchical_grammar(0.75).to_text()


def test_full_disk_behind_stdout(small: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    class Full:
        def write(self, data: bytes) -> int:
            raise OSError(28, "No space left on device")

        def flush(self) -> None:
            pass

    class FakeStdout:  # a redirection to a full disk; fileno() is a file of our own
        buffer = Full()

        def __init__(self) -> None:
            self.f = open(tmp_path / "fd", "wb")  # noqa: SIM115 - closed below

        def fileno(self) -> int:
            return self.f.fileno()

    fake = FakeStdout()
    monkeypatch.setattr(sys, "stdout", fake)
    try:
        for argv in (["sample", str(small), "-n", "5"], ["info", str(small)]):
            rc, _, err = run(capsys, *argv)
            assert rc == 2
            one_error(err, "<stdout>", "No space left on device")
    finally:
        fake.f.close()


# --- new random: Morris et al.'s alphabet of 2048 indexed symbols


def test_new_random_with_indexed_symbols(tmp_path: Path, capsys) -> None:
    f = tmp_path / "r2048.cfg"
    argv = ["new", "random", "--alphabet-size", "2048", "--length", "3", "-o", str(f)]
    assert run(capsys, *argv)[0] == 0
    rc, out, _ = run(capsys, "info", "--json", str(f))
    assert rc == 0
    info = json.loads(out)
    assert info["terminals"] == [f"t{i}" for i in range(2048)]
    # 3 uniform positions of 2048 = 2^11 symbols: exactly 33 bits, a sum of exact floats
    assert info["entropy_bits"] == 33.0 and info["entropy_exact"]
    assert info["n_strings"] == 2048**3

    small = tmp_path / "r4.cfg"
    argv = ["new", "random", "--alphabet-size", "4", "--length", "2", "--symbols", "indexed"]
    assert run(capsys, *argv, "-o", str(small))[0] == 0
    assert load(small).terminals == ("t0", "t1", "t2", "t3")
    rc, out, _ = run(capsys, "info", "--json", str(small))
    assert rc == 0 and json.loads(out)["entropy_bits"] == 4.0


def test_score_names_strings_outside_the_language_and_strict_fails(tmp_path: Path, capsys):
    g = tmp_path / "g.cfg"
    g.write_text("S -> 'a' S [0.5] | 'b' [0.5]\n")
    strings = tmp_path / "s.txt"
    strings.write_text("a a b\na\nb\n" + "a\n" * 12)
    rc, out, err = run(capsys, "score", str(g), str(strings))
    assert rc == 0 and out.splitlines()[:3] == ["3.0", "inf", "1.0"]
    assert f"{strings}:2: warning: not in the language of {g}: 'a'" in err
    assert err.count("warning: not in the language") == 10  # the first ten named ...
    assert "3 more strings not in the language" in err  # ... then a count
    rc, _, _ = run(capsys, "score", str(g), str(strings), "--strict")
    assert rc == 1
    strings.write_text("a b\n")
    rc, _, err = run(capsys, "score", str(g), str(strings), "--strict")
    assert rc == 0 and err == ""
