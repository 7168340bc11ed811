"""GPU-hour arithmetic on hand-computed values."""

from __future__ import annotations

import pytest

from grammarlab.scale.cost import Hardware, Protocol, grid_gpu_hours, run_flops, run_seconds


def test_run_flops_by_hand():
    # 5 epochs x (6*10*2*4 + 2*10*3*4 = 720) + final evaluation 2*10*(2+3)*4 = 400
    assert run_flops(10, Protocol(n_train=2, n_eval=3, tokens=4, epochs=5)) == 4000


def test_run_seconds_and_gpu_hours_by_hand():
    p = Protocol(n_train=2, n_eval=3, tokens=4, epochs=5)
    hw = Hardware(peak_tflops=1e-9, utilisation=1.0, link_gb_s=1e-9, load_minutes=0.0)
    assert run_seconds(10, p, 1, hw) == pytest.approx(4.0)  # 4000 FLOPs at 1000 FLOP/s
    # 2 GPUs: half the compute, plus (5*4 + 1) collectives of 1/2 * 2 * 10 bytes at 1 B/s
    assert run_seconds(10, p, 2, hw) == pytest.approx(2.0 + 210.0)
    assert grid_gpu_hours(10, [p, p], 2, hw) == pytest.approx(2 * 2 * 212.0 / 3600)
