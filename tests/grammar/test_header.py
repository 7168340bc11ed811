"""Machine-readable header lines: family, label and a stated entropy."""

from __future__ import annotations

import pytest

from grammarlab.errors import GrammarError
from grammarlab.grammar.header import (
    HeaderFields,
    family_from_name,
    fields_of_header,
    header_fields,
)
from grammarlab.grammar.load import loads

DYCK = """# Dyck-2 (prose lines are not fields; neither is this one:)
# Exact entropy: 12 bits per string
#
# family: dyck
# label: Dyck-2, p = 0.4
# entropy: monte-carlo
# entropy_bits: 12.5
# entropy_se_bits: 0.25

S -> '(' S ')' [0.4] | 'x' [0.6]
# family: not-a-header-line (after the first rule)
"""


def test_fields_are_read_from_the_leading_comment_block_only():
    f = header_fields(DYCK, "d.cfg")
    assert f == HeaderFields("dyck", "Dyck-2, p = 0.4", "monte-carlo", 12.5, 0.25)
    # the same from a parsed grammar's header (no '#')
    assert fields_of_header(loads(DYCK).header) == f
    assert header_fields("S -> 'a' [1]\n") == HeaderFields()


def test_lines_round_trip():
    f = HeaderFields(family="dyck", label="D2", entropy="derivational", entropy_bits=3.25)
    text = "".join(f"# {line}\n" for line in f.lines()) + "S -> 'a' [1]\n"
    assert header_fields(text) == f


@pytest.mark.parametrize(
    ("lines", "line", "message"),
    [
        ("# family: a\n# family: b\n", 2, "stated twice"),
        ("# entropy: renyi\n", 1, "must name a quantity"),
        ("# entropy: string\n# entropy_bits: abc\n", 2, "finite number >= 0"),
        ("# entropy: string\n# entropy_bits: -1\n", 2, "finite number >= 0"),
        ("# entropy_bits: 2\n", 1, "needs 'entropy: QUANTITY'"),
        (
            "# entropy: string\n# entropy_bits: 2\n# entropy_se_bits: 1\n",
            3,
            "applies to 'entropy: monte-carlo'",
        ),
        ("# label:\n", 1, "has no value"),
    ],
)
def test_bad_fields_name_file_and_line(lines, line, message):
    with pytest.raises(GrammarError, match=message) as e:
        header_fields(lines + "S -> 'a' [1]\n", "g.cfg")
    d = e.value.diagnostics[0]
    assert (d.file, d.line) == ("g.cfg", line)


def test_family_from_name_is_the_stem_up_to_the_first_underscore():
    assert family_from_name("random_l26") == "random"
    assert family_from_name("dyckH8") == "dyckH8"
