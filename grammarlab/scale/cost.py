"""GPU hours of a fine-tune from its FLOPs: an estimate under stated assumptions (never measured
here: this project has run no GPU).

Compute: a dense decoder spends about 2 P FLOPs per token forward and 4 P backward (P
parameters; attention's share is below 1% for strings of under 100 tokens at these widths, so it
is left out). One epoch of the paper's protocol is one update on the whole training set (6 P per
training token; that forward pass is also the training set's evaluation) plus the evaluation of
the test and random sets (2 P per token); the last epoch only evaluates (2 P per token of every
set). Time = FLOPs / (GPUs x peak x utilisation). FSDP adds, per update, two all-gathers of the
bf16 weights (forward and backward) and one reduce-scatter of the gradients, and one all-gather
per evaluation pass, each moving (N - 1) / N x 2 P bytes through every GPU's link. Each run also
loads its checkpoint once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hardware:
    """Assumptions about the GPUs (defaults: one node of 8 H100 SXM)."""

    peak_tflops: float = 989.0  # dense bf16 peak of an H100 SXM
    utilisation: float = 0.2  # share of the peak reached: the batches are small (~4k tokens)
    link_gb_s: float = 450.0  # all-gather / reduce-scatter bandwidth per GPU (NVLink), GB/s
    load_minutes: float = 3.0  # reading the pretrained weights at the start of a run


@dataclass(frozen=True)
class Protocol:
    """One run of the paper's protocol: strings per set, tokens per string, epochs."""

    n_train: int
    n_eval: int  # test + random strings evaluated every epoch
    tokens: int  # positions per string the model sees (string tokens + bos)
    epochs: int = 100


def run_flops(params: int, p: Protocol) -> float:
    """FLOPs of one run: ``epochs`` updates with their evaluations, and the final evaluation."""
    update = 6 * params * p.n_train * p.tokens + 2 * params * p.n_eval * p.tokens
    final = 2 * params * (p.n_train + p.n_eval) * p.tokens
    return p.epochs * update + final


def run_seconds(params: int, p: Protocol, gpus: int, hw: Hardware = Hardware()) -> float:
    """Wall-clock seconds of one run on ``gpus`` GPUs (FSDP when more than one)."""
    compute = run_flops(params, p) / (gpus * hw.peak_tflops * 1e12 * hw.utilisation)
    comm = 0.0
    if gpus > 1:
        moved = (gpus - 1) / gpus * 2 * params  # bytes of bf16 weights through each link
        comm = (p.epochs * 4 + 1) * moved / (hw.link_gb_s * 1e9)
    return compute + comm + 60 * hw.load_minutes


def grid_gpu_hours(params: int, runs: list[Protocol], gpus: int, hw: Hardware = Hardware()):
    """GPU hours of a list of runs, each on ``gpus`` GPUs."""
    return sum(gpus * run_seconds(params, p, gpus, hw) for p in runs) / 3600
