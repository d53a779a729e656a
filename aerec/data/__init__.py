"""Reading, validating, splitting and indexing ratings (Polars and numpy, no torch)."""
