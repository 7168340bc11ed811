"""Stage 4b, figures: the registry of plot kinds and the figures themselves."""
