"""File-system primitives: atomic writes, run locks, table sinks."""
