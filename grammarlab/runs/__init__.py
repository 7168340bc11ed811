"""The run folder: the one owner of its file names and formats."""
