"""The ONNX scoring graph: autoencoder, mask already-rated items, TopK (export-onnx)."""
