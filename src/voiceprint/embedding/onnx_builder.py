"""A small helper for writing ONNX graphs by hand from a checkpoint's weights."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # what ONNX Runtime releases of the last years all load


class GraphBuilder:
    """Collects nodes and initializers; hands out unique tensor names."""

    def __init__(self, weights: Mapping[str, np.ndarray]) -> None:
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0
        self.axes_time = self.const(np.array([2], dtype=np.int64), "axes_time")

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, array: np.ndarray, hint: str) -> str:
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, key: str) -> str:
        return self.const(self.weights[key].astype(np.float32), key)

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs: object) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def ops(self, op_type: str, inputs: list[str], n_out: int, **attrs: object) -> list[str]:
        outs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, **attrs))
        return outs

    def model(
        self, name: str, output: str, inputs: list[onnx.ValueInfoProto], dim: int
    ) -> onnx.ModelProto:
        """The finished, checked model; tensor ``output`` becomes ``embedding`` [batch, dim]."""
        self.nodes.append(helper.make_node("Identity", [output], ["embedding"]))
        graph = helper.make_graph(
            self.nodes,
            name,
            inputs=inputs,
            outputs=[helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", dim])],
            initializer=self.initializers,
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION
        )
        model.producer_name = "voiceprint"
        onnx.checker.check_model(model, full_check=True)
        return model
