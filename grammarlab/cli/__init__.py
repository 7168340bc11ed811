"""The ``grammarlab`` command: a dict of subcommand name to a module that adds its parser.

Each command is a thin call into the library; user mistakes (:class:`GrammarlabError`) print as
``FILE:LINE: error: MESSAGE`` on stderr and exit 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from grammarlab.errors import GrammarlabError

# subcommand -> module under grammarlab.cli that defines `add_parser(subparsers)`.
COMMANDS: dict[str, str] = {
    "grammar": "grammar",
    "train": "train",
    "eval": "train",
    "phases": "analysis",
    "measures": "analysis",
    "sweep": "sweep",
    "plot": "sweep",
    "demo": "sweep",
    "plan": "plan",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grammarlab",
        description="Grammars, fine-tunes and memorization measures for formal languages.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    done: set[str] = set()
    for module in dict.fromkeys(COMMANDS.values()):
        try:
            mod = importlib.import_module(f"grammarlab.cli.{module}")
        except ModuleNotFoundError as e:  # a part not built yet
            if e.name and e.name.startswith("grammarlab"):
                continue
            raise
        mod.add_parser(sub)
        done.add(module)
    return parser


def main(argv: list[str] | None = None) -> int:
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
