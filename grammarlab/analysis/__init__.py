"""Stage 3, analysis: phases and memorization measures (pure functions over recorded curves),
a run's analysis files, and tidy tables over many runs."""
