"""The pandas/pyarrow side of the processors, imported only inside worker processes."""
