"""Progress that says what is done: a tqdm bar on a terminal, one line with the time per step
off one (so a log is never silent for minutes). Cross-cutting, as io.py: the training loop, the
sweep and the CLI draw their progress with it."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tqdm import tqdm


class Lines:
    """Progress off a terminal: ``HH:MM:SS desc: n/total unit (postfix), elapsed`` every ``every``
    steps and at the last one. Has the part of tqdm's interface the loops use (``update``,
    ``set_postfix``, ``set_postfix_str``, ``write``, ``close``, a context manager)."""

    def __init__(self, total: int, desc: str, unit: str, initial: int = 0, every: int = 1,
                 stream: TextIO | None = None) -> None:  # fmt: skip
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.every, self.stream, self.postfix = max(1, every), stream, ""
        self._last, self._t0 = initial, time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.n - self._last >= self.every or self.n >= self.total:
            self._last = self.n
            more = f" ({self.postfix})" if self.postfix else ""
            self.write(f"{time.strftime('%H:%M:%S')} {self.desc}: {self.n}/{self.total} "
                       f"{self.unit}{more}, {elapsed(time.perf_counter() - self._t0)}")  # fmt: skip

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True,
                    **kwargs: Any) -> None:  # fmt: skip
        self.postfix = ", ".join(f"{k}={v}" for k, v in {**(ordered_dict or {}), **kwargs}.items())

    def write(self, s: str) -> None:
        print(s, file=self.stream or sys.stderr, flush=True)

    def close(self) -> None:
        pass

    def __enter__(self) -> Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def elapsed(seconds: float) -> str:
    """``41 s``, ``5 min 50 s``, ``1 h 02 min``."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def progress(total: int, desc: str, unit: str, *, show: bool = True, initial: int = 0,
             every: int = 1, stream: TextIO | None = None) -> Any:  # fmt: skip
    """Progress over ``total`` steps: a tqdm bar when ``stream`` (stderr) is a terminal, else
    :class:`Lines` (one line every ``every`` steps and at the last, with the time); nothing when
    ``show`` is False. Use it as a context manager."""
    out = stream or sys.stderr
    tty = hasattr(out, "isatty") and out.isatty()
    if show and not tty:
        return Lines(total, desc, unit, initial, every, out)
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not show, file=out)


def step(msg: str, show: bool = True, stream: TextIO | None = None) -> None:
    """One progress line with the time (``HH:MM:SS msg``), for a step without a count."""
    if show:
        print(f"{time.strftime('%H:%M:%S')} {msg}", file=stream or sys.stderr, flush=True)
