"""The package's import graph, read from the source with ``ast`` (no module is imported):

* no import cycles between grammarlab modules, counting every import, also those inside
  functions (they run later, but a cycle through them is still two modules that need each other);
* imports at the top of modules: a function-level import is allowed only where it keeps a heavy
  library off the import path of callers that do not need it (CLI start-up, ``grammarlab grammar``
  without torch), for an optional dependency (a missing install is a one-line error where it is
  used), or as a listed exception (:data:`ALLOWED`, each with its reason);
* ``grammarlab --help`` (which builds every subcommand's parser) imports no heavy library.

Heavy means seconds or tenths of a second to import (measured with ``python -X importtime`` on the
shared CPU machine): torch 1.5 s, transformers 1.3 s, seaborn 1.2 s (pandas, matplotlib, scipy),
pandas 0.35 s, matplotlib 0.16 s (pyplot more), scipy 0.12 s (scipy.stats more); peft imports
torch and transformers; huggingface_hub's ``try_to_load_from_cache`` 0.14 s even after torch
(the package itself loads its modules on first use: ``import huggingface_hub.utils`` 1 ms). Not
heavy: numpy 0.1 s (every stage needs it), tqdm 0.04 s, tokenizers 5-9 ms, safetensors 1 ms
(``safetensors.torch`` imports torch, which its callers have loaded), and the standard library.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "grammarlab"
HEAVY = {"torch", "transformers", "peft", "pandas", "matplotlib", "seaborn", "scipy",
         "huggingface_hub"}  # fmt: skip
# optional dependencies (pyproject's extras): imported where they are used, so that a missing
# install is a one-line error there and every other command works (submitit: the scale extra,
# 50-60 ms on a fresh interpreter)
# trackers extra: mlflow, trackio, wandb (report_to); data extra: pyarrow (Parquet export)
OPTIONAL = {"submitit", "accelerate", "mlflow", "trackio", "wandb", "pyarrow"}
# function-level imports kept for now, each with its reason: (file, imported module) -> why.
# Remove an entry when its import moves to the top.
ALLOWED: dict[tuple[str, str], str] = {
    ("grammarlab/train/tokens.py", "tokenizers"):
        "in the same function as transformers' PreTrainedTokenizerFast (heavy); tokenizers "
        "alone takes 5-9 ms and could move to the top (train area)",
}  # fmt: skip


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


class _Imports(ast.NodeVisitor):
    """Every import of a module: (target, line, inside a function?, only under TYPE_CHECKING?).
    A target is a grammarlab module or a third-party/stdlib top-level package name."""

    def __init__(self, module: str, is_package: bool) -> None:
        self.module, self.is_package = module, is_package
        self.found: list[tuple[str, int, bool, bool]] = []
        self.depth = 0
        self.typing_only = False

    def _add(self, target: str, line: int) -> None:
        self.found.append((target, line, self.depth > 0, self.typing_only))

    def _func(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _func

    def visit_If(self, node: ast.If) -> None:
        test = ast.unparse(node.test)
        if test in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            before, self.typing_only = self.typing_only, True
            for n in node.body:
                self.visit(n)
            self.typing_only = before
            for n in node.orelse:
                self.visit(n)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(self._target(alias.name), node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:  # relative: from the importer's package
            pkg = self.module.split(".")
            pkg = pkg if self.is_package else pkg[:-1]
            pkg = pkg[: len(pkg) - node.level + 1]
            base = ".".join(pkg + ([base] if base else []))
        if base.split(".")[0] != "grammarlab":
            self._add(base.split(".")[0], node.lineno)
            return
        if base in MODULES:
            self._add(base, node.lineno)  # `from pkg import x` runs pkg (its __init__) first
        for alias in node.names:
            if f"{base}.{alias.name}" in MODULES:
                self._add(f"{base}.{alias.name}", node.lineno)

    @staticmethod
    def _target(name: str) -> str:
        if name.split(".")[0] != "grammarlab":
            return name.split(".")[0]
        while name not in MODULES:
            name = name.rsplit(".", 1)[0]
        return name


def imports() -> dict[str, list[tuple[str, int, bool, bool]]]:
    out = {}
    for name, path in MODULES.items():
        v = _Imports(name, path.name == "__init__.py")
        v.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        out[name] = v.found
    return out


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a list of modules, first = last) per strongly connected component with one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[list[str]] = []

    def strong(v: str) -> None:  # Tarjan; the graph has ~60 nodes, recursion depth is no issue
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in edges.get(v, ()):
                comps.append(comp)

    for v in sorted(edges):
        if v not in index:
            strong(v)
    out = []
    for comp in comps:  # a concrete cycle inside the component: breadth-first back to its start
        members, start = set(comp), min(comp)
        prev: dict[str, str] = {}
        frontier = [start]
        while frontier and start not in prev:
            nxt = []
            for v in frontier:
                for w in sorted(edges[v] & members):
                    if w not in prev:
                        prev[w] = v
                        nxt.append(w)
            frontier = nxt
        path, v = [start], prev[start]
        while v != start:
            path.append(v)
            v = prev[v]
        out.append([start, *reversed(path[1:]), start])
    return out


def graph(include_functions: bool = True) -> dict[str, set[str]]:
    """grammarlab module -> the grammarlab modules it imports (TYPE_CHECKING-only imports never
    run and are left out)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for mod, found in imports().items():
        edges[mod]
        for target, _, in_function, typing_only in found:
            if target in MODULES and target != mod and not typing_only:
                if include_functions or not in_function:
                    edges[mod].add(target)
    return edges


def test_the_reader_sees_function_level_relative_and_typing_only_imports():
    found = imports()
    cli_train = {(t, fn, ty) for t, _, fn, ty in found["grammarlab.cli.train"]}
    assert ("grammarlab.runs.launch", True, False) in cli_train  # inside cmd_train
    assert ("grammarlab.train.config", False, True) in cli_train  # under TYPE_CHECKING
    assert ("grammarlab.errors", False, False) in cli_train
    assert all(t in MODULES or "." not in t for f in found.values() for t, *_ in f)
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    found = cycles(graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def _heavy_closure(edges: dict[str, set[str]], third: dict[str, set[str]]) -> dict[str, set[str]]:
    """Module -> the heavy libraries that importing it loads (top-level imports, transitively)."""
    out = {}
    for m in edges:
        seen, todo = {m}, [m]
        while todo:
            for w in edges[todo.pop()] - seen:
                seen.add(w)
                todo.append(w)
        out[m] = set().union(*(third[v] for v in seen)) & HEAVY
    return out


def function_level_offenders() -> dict[str, list[str]]:
    """File -> function-level imports that keep no heavy library off an import path."""
    found = imports()
    top = graph(include_functions=False)
    third = {m: {t for t, _, fn, _ in f if t not in MODULES and not fn} for m, f in found.items()}
    heavy = _heavy_closure(top, third)
    out: dict[str, list[str]] = defaultdict(list)
    for mod, f in found.items():
        rel = str(MODULES[mod].relative_to(PACKAGE.parent))
        for target, line, in_function, _ in f:
            if not in_function or target == mod or target in OPTIONAL or (rel, target) in ALLOWED:
                continue
            lazy_heavy = heavy[target] - heavy[mod] if target in MODULES else {target} & HEAVY
            if not lazy_heavy:
                out[rel].append(f"line {line}: {target}")
    return dict(out)


def test_function_level_imports_only_keep_heavy_libraries_lazy():
    offenders = function_level_offenders()
    assert not offenders, (
        "function-level imports that keep nothing heavy lazy (move them to "
        "the top):\n" + "\n".join(f"{f}: {', '.join(v)}" for f, v in sorted(offenders.items()))
    )


def test_allowed_exceptions_name_real_files():
    for file, target in ALLOWED:
        assert (PACKAGE.parent / file).is_file(), file
        assert target in MODULES or "." not in target, target


def test_cli_help_imports_no_heavy_library():
    """Building every subcommand's parser (what ``grammarlab --help`` does) in a fresh
    interpreter loads none of the heavy libraries: CLI start-up stays fast."""
    code = (
        "import sys; from grammarlab.cli import build_parser; build_parser(); "
        f"print(sorted(m for m in {sorted(HEAVY)!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent)  # fmt: skip
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
