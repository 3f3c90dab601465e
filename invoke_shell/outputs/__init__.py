"""Output files: names, PNG metadata, the log."""
