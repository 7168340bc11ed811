"""Fake capacity run records with a known plateau: a model of P parameters memorizes every
string up to ``per_param * P`` bits, then nothing more."""

BITS_PER_STRING = 128.0


def fake(model_id, family, params, cap, n, seed, dtype="float32"):
    data = n * BITS_PER_STRING
    mem = min(data, cap)  # memorize everything up to the capacity, then the plateau
    final = {
        "mem_bits": mem,
        "mem_bits_signed": mem - 1.0,
        "train_bits_per_string": 1.0,
        "test_bits_per_string": 130.0,
        "test_excess_bits": 2.0,
        "auc": 1.0 if data <= cap else 0.5 + 0.5 * cap / data,
    }
    return {
        "run_id": f"{model_id}_{n}_{dtype}_{seed}",
        "settings": {
            "model_id": model_id,
            "family": family,
            "n_train": n,
            "seed": seed,
            "dtype": dtype,
        },
        "n_params": params,
        "dataset_bits": data,
        "auc_chance_sd": 0.05,
        "saturated": True,
        "saturated_at_step": 100,
        "steps": 100,
        "seconds": 1.0,
        "final": final,
        "curve": [final],
    }


def grid(per_param, sizes=(1000, 2000, 4000), seeds=(0, 1), jitter=0.0):
    recs = []
    for i, p in enumerate(sizes):
        for s in seeds:
            cap = per_param * p * (1 + jitter * (1 if s else -1))
            for n in (4, 16, 64, 256, 1024):
                recs.append(fake(f"m{i}", "gpt_neox", p, cap, n, s))
    return recs
