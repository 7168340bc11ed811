"""A 2-model x 2-dataset-size capacity config that trains in seconds (``{dtypes}``: a TOML list
of dtypes, filled in by the ``config_file`` fixture of conftest.py)."""

CONFIG = """\
name = "e2e"
alphabet_size = 4
length = 6
dataset_sizes = [4, 24]
seeds = [0]
dtypes = {dtypes}
n_test = 16

[train]
batch_size = 8
max_steps = 200
lr = 1e-2
warmup_steps = 10
eval_every = 50

[saturation]
window = 2
rel_tol = 0.02
min_steps = 100

[[models]]
preset = "pythia-tiny"
hidden_size = 8
num_layers = 1
num_heads = 2
intermediate_size = 16

[[models]]
preset = "llama-tiny"
hidden_size = 16
num_layers = 1
num_heads = 2
intermediate_size = 32
"""
