"""The ``grammarlab`` command: a dict of subcommand name to a module that adds its parser.

Each command is a thin call into the library; user mistakes (:class:`GrammarlabError`) print as
``FILE:LINE: error: MESSAGE`` on stderr and exit 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

import grammarlab
from grammarlab.cli.console import quiet_libraries
from grammarlab.errors import GrammarlabError

# subcommand -> module under grammarlab.cli that defines `add_parser(subparsers)`.
COMMANDS: dict[str, str] = {
    "grammar": "grammar",
    "train": "train",
    "eval": "train",
    "config-doc": "train",
    "phases": "analysis",
    "measures": "analysis",
    "data": "analysis",
    "sweep": "sweep",
    "plot": "sweep",
    "demo": "sweep",
    "report": "report",
    "capacity": "capacity",
    "plan": "plan",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grammarlab",
        description="Grammars, fine-tunes and memorization measures for formal languages.",
        epilog="Progress bars are drawn only on a terminal; --quiet turns them off. Hugging Face "
        "progress bars and logging are off unless you set HF_HUB_DISABLE_PROGRESS_BARS=0 or "
        "TRANSFORMERS_VERBOSITY=info.",
    )
    parser.add_argument(
        "--version", action="version", version=f"grammarlab {grammarlab.__version__}"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in dict.fromkeys(COMMANDS.values()):
        importlib.import_module(f"grammarlab.cli.{module}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_libraries()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except GrammarlabError as e:
        print(str(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
