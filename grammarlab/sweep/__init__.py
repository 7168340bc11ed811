"""Stage 4a, sweeps: sweep files expanded into runs, executors, tidy tables, the embedded demo."""
