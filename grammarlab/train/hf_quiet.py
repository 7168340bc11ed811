"""Keep the Hugging Face libraries' progress bars (and their warnings to each other) off the
console while we load, wrap or save a model.

``transformers`` draws "Loading weights" and "Writing model shards" bars through its own tqdm
switch (which also drives ``huggingface_hub``'s), and its GGUF reader draws "Converting and
de-quantizing GGUF tensors" with plain tqdm, which no switch reaches: :func:`quiet_hf` turns the
first off and swaps the second for a disabled bar, and puts everything back on exit, so the
caller's settings are never changed for good. It also hides :data:`LIBRARY_DEPRECATIONS`,
deprecation warnings that one library raises about its use of another (peft calling a
``transformers`` alias on every wrap), which no change of ours can avoid.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

_GGUF_MODULE = "transformers.modeling_gguf_pytorch_utils"

#: (message regex, category) of warnings raised inside the libraries about each other
LIBRARY_DEPRECATIONS: tuple[tuple[str, type[Warning]], ...] = (
    # peft.PeftModel.__init__ reads model.is_gradient_checkpointing (peft 0.21, transformers 5)
    (r"`is_gradient_checkpointing` is deprecated", FutureWarning),
)


@contextmanager
def quiet_hf(verbose: bool = False) -> Iterator[None]:
    """Inside the block the libraries draw no progress bars (unless ``verbose``) and raise none
    of :data:`LIBRARY_DEPRECATIONS`; other warnings and errors still show."""
    with warnings.catch_warnings():
        for message, category in LIBRARY_DEPRECATIONS:
            warnings.filterwarnings("ignore", message=message, category=category)
        if verbose:
            yield
        else:
            with _no_bars():
                yield


@contextmanager
def _no_bars() -> Iterator[None]:
    import huggingface_hub.utils as hub_utils
    from transformers.utils import logging as hf_logging

    bars_were_on = hf_logging.is_progress_bar_enabled()
    hub_bars_were_off = hub_utils.are_progress_bars_disabled()
    gguf = importlib.import_module(_GGUF_MODULE)
    gguf_tqdm = gguf.tqdm
    hf_logging.disable_progress_bar()  # transformers' bars and huggingface_hub's
    gguf.tqdm = functools.partial(gguf_tqdm, disable=True)
    try:
        yield
    finally:
        gguf.tqdm = gguf_tqdm
        if bars_were_on:
            hf_logging.enable_progress_bar()  # switches the hub's bars too: set them next
        if hub_bars_were_off:
            hub_utils.disable_progress_bars()
        else:
            hub_utils.enable_progress_bars()
