"""Batch scoring with ONNX Runtime (score-all). Needs onnxruntime, polars and numpy only."""
