"""The project's one exception type, carrying where a problem is and how to fix it.

The CLI prints a :class:`GrammarlabError` as ``FILE:LINE: error: MESSAGE`` (plus ``hint:`` lines)
and exits non-zero; user mistakes never show a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in an input file."""

    file: str
    line: int | None
    message: str
    hint: str | None = None

    def format(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        text = f"{where}: error: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class GrammarlabError(Exception):
    """A user-facing error: bad input file, bad config, impossible request.

    Holds one or more diagnostics; ``str(err)`` is the formatted list.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        file: str | None = None,
        line: int | None = None,
        hint: str | None = None,
        diagnostics: list[Diagnostic] | tuple[Diagnostic, ...] | None = None,
    ) -> None:
        diags = list(diagnostics or [])
        if message is not None:
            diags.insert(0, Diagnostic(file or "grammarlab", line, message, hint))
        if not diags:
            raise ValueError("GrammarlabError needs a message or diagnostics")
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diags)
        super().__init__("\n".join(d.format() for d in self.diagnostics))


class GrammarError(GrammarlabError):
    """An invalid grammar file (syntax or semantic problems)."""


class ConfigError(GrammarlabError):
    """An invalid run/sweep configuration; ``key``: the config key at fault (dotted), if one."""

    def __init__(self, message: str | None = None, *, key: str | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.key = key
