"""Fixtures of the capacity tests: a small grid config written to a file."""

import pytest

from tests.capacity.grid_config import CONFIG


@pytest.fixture
def config_file(tmp_path):
    def make(dtypes='["float32"]', text=CONFIG):
        p = tmp_path / "cap.toml"
        p.write_text(text.format(dtypes=dtypes))
        return p

    return make
