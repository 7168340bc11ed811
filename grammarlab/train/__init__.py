"""Stage 2, training: the run config, model presets and tokens, the datasets of a run, the epoch
loop, the training step and the per-epoch evaluation (with prefix sharing and CPU workers)."""
