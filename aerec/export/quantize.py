"""Reduced-precision scoring graphs (export-onnx --precision int8).

ONNX Runtime's dynamic quantization stores each dense layer's constant weight matrix as
int8 with one scale per output column and quantizes the layer's input per batch at run
time; the decoder's product then runs as an integer product (VNNI on recent x86 CPUs).
The sparse first layer (a gather and a batched product) stays float32.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

PRECISIONS = ("fp32", "int8")


def quantize_int8(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The graph with every dense layer (Gemm or MatMul by a constant matrix) in int8."""
    proto = onnx.ModelProto.FromString(proto.SerializeToString())
    # The exporter's shape annotations disagree with ONNX's own inference about the
    # first layer's transposed weight; the quantizer re-infers every shape.
    del proto.graph.value_info[:]
    root = logging.getLogger()
    level = root.level
    # The quantizer logs a generic "consider pre-processing" warning on the root logger.
    root.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory(prefix="aerec-int8-") as directory:
            target = Path(directory) / "int8.onnx"
            quantize_dynamic(
                proto,
                target,
                op_types_to_quantize=["Gemm", "MatMul"],
                per_channel=True,
                weight_type=QuantType.QInt8,
                extra_options={"MatMulConstBOnly": True},
            )
            return onnx.load(str(target))
    finally:
        root.setLevel(level)
