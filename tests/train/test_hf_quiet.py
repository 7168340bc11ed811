"""quiet_hf: no progress bars inside the block, the caller's settings restored on exit (also
after an exception), the libraries' warnings about each other hidden and no others."""

from __future__ import annotations

import warnings

import huggingface_hub.utils as hub_utils
import pytest
from transformers.utils import logging as hf_logging

from grammarlab.train.hf_quiet import quiet_hf


def _bars() -> tuple[bool, bool]:
    return hf_logging.is_progress_bar_enabled(), hub_utils.are_progress_bars_disabled()


@pytest.mark.parametrize("start", [(True, False), (False, True)])
def test_bars_off_inside_and_the_callers_settings_back_after(start):
    was = _bars()
    try:
        (hf_logging.enable_progress_bar if start[0] else hf_logging.disable_progress_bar)()
        (hub_utils.disable_progress_bars if start[1] else hub_utils.enable_progress_bars)()
        assert _bars() == start
        with pytest.raises(RuntimeError, match="inside"):
            with quiet_hf():
                assert _bars() == (False, True)
                raise RuntimeError("inside")
        assert _bars() == start
        with quiet_hf(verbose=True):
            assert _bars() == start  # verbose: the bars are left as they are
    finally:
        (hf_logging.enable_progress_bar if was[0] else hf_logging.disable_progress_bar)()
        (hub_utils.disable_progress_bars if was[1] else hub_utils.enable_progress_bars)()


def test_only_the_libraries_warnings_about_each_other_are_hidden():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with quiet_hf(verbose=True):
            warnings.warn("`is_gradient_checkpointing` is deprecated", FutureWarning, stacklevel=1)
            warnings.warn("something else", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["something else"]
