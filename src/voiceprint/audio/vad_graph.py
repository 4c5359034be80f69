"""Silero VAD as one ONNX call per clip: its 16 kHz step wrapped in an ONNX ``Scan``.

Silero's published graph scores one 32 ms window per call and hands its
recurrent state back to the caller; the call overhead, not the arithmetic,
was most of the VAD's time (156 calls for a 5 s clip). ``Scan`` runs the very
same step over every window of a clip inside ONNX Runtime, carrying the state,
so the probabilities are exactly those of calling the step window by window.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SAMPLES_IN = 576  # 512 new samples plus 64 of context, at 16 kHz
STATE_SHAPE = (2, 1, 128)


def _step_16k(model: onnx.ModelProto) -> onnx.GraphProto:
    """The branch of Silero's graph that runs when ``sr`` is 16000."""
    (branch_on_rate,) = (n for n in model.graph.node if n.op_type == "If")
    return next(a.g for a in branch_on_rate.attribute if a.name == "then_branch")


def scan_over_windows(model: onnx.ModelProto) -> onnx.ModelProto:
    """A model with input ``windows`` [N, 576] and outputs ``probs`` [N, 1, 1], ``state``."""
    step = _step_16k(model)
    prob, state = (o.name for o in step.output)
    body = helper.make_graph(
        [
            helper.make_node(
                "Constant", [], ["axis0"], value=numpy_helper.from_array(np.array([0], np.int64))
            ),
            helper.make_node("Unsqueeze", ["window", "axis0"], ["input"]),
            helper.make_node("Identity", ["state_in"], ["state"]),
            *step.node,
            helper.make_node("Identity", [state], ["state_out"]),
            helper.make_node("Identity", [prob], ["prob"]),
        ],
        "silero_step",
        inputs=[
            helper.make_tensor_value_info("state_in", TensorProto.FLOAT, list(STATE_SHAPE)),
            helper.make_tensor_value_info("window", TensorProto.FLOAT, [SAMPLES_IN]),
        ],
        outputs=[
            helper.make_tensor_value_info("state_out", TensorProto.FLOAT, list(STATE_SHAPE)),
            helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 1]),
        ],
        initializer=list(step.initializer),
    )
    scan = helper.make_node(
        "Scan", ["state0", "windows"], ["state", "probs"], body=body, num_scan_inputs=1
    )
    graph = helper.make_graph(
        [scan],
        "silero_vad_scan",
        inputs=[
            helper.make_tensor_value_info("windows", TensorProto.FLOAT, ["windows", SAMPLES_IN])
        ],
        outputs=[
            helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["windows", 1, 1]),
            helper.make_tensor_value_info("state", TensorProto.FLOAT, list(STATE_SHAPE)),
        ],
        initializer=[numpy_helper.from_array(np.zeros(STATE_SHAPE, np.float32), "state0")],
    )
    scanned = helper.make_model(
        graph, opset_imports=list(model.opset_import), ir_version=model.ir_version
    )
    scanned.producer_name = "voiceprint"
    onnx.checker.check_model(scanned, full_check=True)
    return scanned
