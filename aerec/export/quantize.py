"""Reduced-precision scoring graphs (export-onnx --precision fp16|int8).

fp16: every float weight, product, activation, the mask and the top k in float16 (ONNX
Runtime's CPU and CUDA providers both run these ops in float16); the graph's inputs and
its [batch, k] scores stay float32, cast at its edges, so the contract does not change.
-inf stays -inf, so the mask is as exact as in float32.

int8:
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

REDUCED = ("fp16", "int8")  # checked against the float32 network by top-k overlap


def to_float16(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The graph computing in float16, its inputs and outputs float32."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    # The converter keeps TopK in float32 by default, which would cast every score of the
    # batch back; ONNX Runtime has float16 TopK on the CPU and on CUDA.
    kept = [op for op in DEFAULT_OP_BLOCK_LIST if op != "TopK"]
    copy = onnx.ModelProto.FromString(proto.SerializeToString())
    del copy.graph.value_info[:]  # as for int8: the converter re-infers every shape
    converted = convert_float_to_float16(copy, keep_io_types=True, op_block_list=kept)
    _sort_topologically(converted.graph)  # it appends the inputs' casts after their readers
    return converted


def _sort_topologically(graph: onnx.GraphProto) -> None:
    """Order the graph's nodes so that each comes after the nodes whose outputs it reads."""
    known = {"", *(v.name for v in graph.input), *(t.name for t in graph.initializer)}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [node for node in pending if all(name in known for name in node.input)]
        if not ready:
            raise ValueError(f"the graph has a cycle or an unknown input at {pending[0].name}")
        waiting = [node for node in pending if not all(name in known for name in node.input)]
        for node in ready:
            known.update(node.output)
        ordered.extend(ready)
        pending = waiting
    del graph.node[:]
    graph.node.extend(ordered)


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
