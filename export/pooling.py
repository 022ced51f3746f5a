"""Append masked mean pooling and L2 normalisation to an exported encoder graph.

Why in the graph: the server (onnxruntime) and the browser (onnxruntime-web) then return finished sentence
vectors and neither needs a tensor library to pool. Matches sentence-transformers' Pooling(mean) +
Normalize: sum(h * mask) / max(sum(mask), 1e-9), then x / max(||x||, 1e-12).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

EMBEDDING_OUTPUT = "sentence_embedding"
_PREFIX = "clinvec_pool/"


def append_mean_pooling(
    model: onnx.ModelProto,
    hidden: str = "last_hidden_state",
    mask: str = "attention_mask",
    output: str = EMBEDDING_OUTPUT,
    keep_hidden: bool = False,
) -> onnx.ModelProto:
    """Return ``model`` with ``output`` [batch, hidden] added (and ``hidden`` dropped unless ``keep_hidden``)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    hidden_info = _find(graph.output, hidden, "output")
    _find(graph.input, mask, "input")
    dims = hidden_info.type.tensor_type.shape.dim
    if len(dims) != 3:
        raise ValueError(f"{hidden} must be [batch, sequence, hidden], got rank {len(dims)}")
    batch = dims[0].dim_param or dims[0].dim_value
    width = dims[2].dim_value or dims[2].dim_param

    def name(part: str) -> str:
        return _PREFIX + part

    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([1], dtype=np.int64), name("axis_seq")),
            numpy_helper.from_array(np.array([-1], dtype=np.int64), name("axis_last")),
            numpy_helper.from_array(np.array(1e-9, dtype=np.float32), name("min_count")),
            numpy_helper.from_array(np.array(1e-12, dtype=np.float32), name("min_norm")),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Cast", [mask], [name("mask_f")], to=TensorProto.FLOAT, name=name("cast_mask")),
            helper.make_node(
                "Unsqueeze", [name("mask_f"), name("axis_last")], [name("mask_3d")], name=name("unsqueeze")
            ),
            helper.make_node("Mul", [hidden, name("mask_3d")], [name("masked")], name=name("mask_hidden")),
            helper.make_node(
                "ReduceSum", [name("masked"), name("axis_seq")], [name("summed")], keepdims=0, name=name("sum_tokens")
            ),
            helper.make_node(
                "ReduceSum", [name("mask_3d"), name("axis_seq")], [name("count")], keepdims=0, name=name("count_tokens")
            ),
            helper.make_node("Max", [name("count"), name("min_count")], [name("count_c")], name=name("clamp_count")),
            helper.make_node("Div", [name("summed"), name("count_c")], [name("mean")], name=name("mean")),
            helper.make_node(
                "ReduceL2", [name("mean"), name("axis_last")], [name("norm")], keepdims=1, name=name("l2")
            ),
            helper.make_node("Max", [name("norm"), name("min_norm")], [name("norm_c")], name=name("clamp_norm")),
            helper.make_node("Div", [name("mean"), name("norm_c")], [output], name=name("normalize")),
        ]
    )
    out_info = helper.make_tensor_value_info(output, TensorProto.FLOAT, [batch, width])
    kept = [o for o in graph.output if keep_hidden or o.name != hidden]
    del graph.output[:]
    graph.output.extend([out_info, *kept])
    onnx.checker.check_model(model)
    return model


def _find(values, wanted: str, kind: str):  # noqa: ANN001, ANN202 - protobuf repeated fields
    for value in values:
        if value.name == wanted:
            return value
    raise ValueError(f"graph has no {kind} named {wanted!r}: {[v.name for v in values]}")
