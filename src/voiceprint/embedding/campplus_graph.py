"""Build 3D-Speaker's CAM++ as an ONNX graph straight from its weights.

The network mirrors ``speakerlab.models.campplus.DTDNN.CAMPPlus(feat_dim=80,
embedding_size=192)`` in eval mode, operation for operation:

* FCM head: a 2-D conv front end (3x3 convs, two residual stages that halve the
  frequency axis) whose 32 channels x 10 frequency rows become 320 channels;
* a strided TDNN layer (kernel 5, stride 2) to 128 channels;
* three densely connected blocks (12, 24, 16 layers; growth 32; dilation 1, 2, 2)
  of context-aware masking layers, each followed by a halving transit layer;
* mean and (unbiased) standard deviation over time, then a 1x1 conv and a
  BatchNorm without affine parameters.

Each CAM layer gates its local conv output with a sigmoid of the clip's global
mean plus the mean of its 100-frame segment, so the embedding depends on every
frame of the clip: padding would change it. Batch only clips of equal length.

Graph input: ``feats`` [batch, frames, 80] (Kaldi fbank, clip mean removed).
Output: ``embedding`` [batch, 192].
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper

from voiceprint.embedding.onnx_builder import GraphBuilder

BN_EPS = 1e-5
SEGMENT = 100  # frames per segment of the CAM layers' segment pooling
BLOCKS = ((12, 1), (24, 2), (16, 2))  # (layers, dilation); kernel 3 throughout
EMBEDDING_DIM = 192


class _CampplusBuilder(GraphBuilder):
    def batch_norm(self, x: str, prefix: str, affine: bool = True) -> str:
        mean = self.weights[f"{prefix}.running_mean"].astype(np.float32)
        scale = self.weight(f"{prefix}.weight") if affine else self.const(np.ones_like(mean), "one")
        bias = self.weight(f"{prefix}.bias") if affine else self.const(np.zeros_like(mean), "zero")
        return self.op(
            "BatchNormalization",
            [
                x,
                scale,
                bias,
                self.weight(f"{prefix}.running_mean"),
                self.weight(f"{prefix}.running_var"),
            ],
            epsilon=BN_EPS,
        )

    def conv(
        self,
        x: str,
        key: str,
        *,
        stride: tuple[int, ...] | int = 1,
        pad: int = 0,
        dilation: int = 1,
        bias: bool = False,
    ) -> str:
        """PyTorch Conv1d/Conv2d with zero padding ``pad`` on every spatial side."""
        weight = self.weights[f"{key}.weight"]
        dims = weight.ndim - 2
        strides = list(stride) if isinstance(stride, tuple) else [stride] * dims
        inputs = [x, self.weight(f"{key}.weight")]
        if bias:
            inputs.append(self.weight(f"{key}.bias"))
        return self.op(
            "Conv", inputs, strides=strides, pads=[pad] * (2 * dims), dilations=[dilation] * dims
        )

    def bn_relu(self, x: str, prefix: str) -> str:
        return self.op("Relu", [self.batch_norm(x, prefix)])

    # --- FCM head -----------------------------------------------------------------------

    def res_block(self, x: str, prefix: str, stride: int) -> str:
        out = self.bn_relu(
            self.conv(x, f"{prefix}.conv1", stride=(stride, 1), pad=1), f"{prefix}.bn1"
        )
        out = self.batch_norm(self.conv(out, f"{prefix}.conv2", pad=1), f"{prefix}.bn2")
        shortcut = x
        if f"{prefix}.shortcut.0.weight" in self.weights:
            shortcut = self.batch_norm(
                self.conv(x, f"{prefix}.shortcut.0", stride=(stride, 1)), f"{prefix}.shortcut.1"
            )
        return self.op("Relu", [self.op("Add", [out, shortcut])])

    def head(self, feats_bft: str) -> str:
        x = self.op("Unsqueeze", [feats_bft, self.const(np.array([1], np.int64), "ax")])
        x = self.bn_relu(self.conv(x, "head.conv1", pad=1), "head.bn1")
        for layer in ("layer1", "layer2"):
            x = self.res_block(x, f"head.{layer}.0", stride=2)
            x = self.res_block(x, f"head.{layer}.1", stride=1)
        x = self.bn_relu(self.conv(x, "head.conv2", stride=(2, 1), pad=1), "head.bn2")
        channels = self.weights["head.conv2.weight"].shape[0]
        rows = self.weights["xvector.tdnn.linear.weight"].shape[1] // channels
        shape = self.const(np.array([0, channels * rows, -1], np.int64), "shape")
        return self.op("Reshape", [x, shape])  # [B, C * F', T]

    # --- x-vector trunk -----------------------------------------------------------------

    def segment_pooling(self, x: str) -> tuple[str, str]:
        """Matrices that average frames within 100-frame segments and spread the means back.

        For ``x`` [B, C, T]: ``x @ average`` [B, C, S] holds each segment's mean (the last
        segment may be short), ``... @ spread`` [B, C, T] gives every frame its segment's
        mean. Built once per clip: every CAM layer of the trunk sees the same T.
        """
        frames = self.op("Gather", [self.op("Shape", [x]), self.const(np.array(2, np.int64), "i")])
        segment = self.const(np.array(SEGMENT, np.int64), "seg")
        n_segments = self.op(
            "Div",
            [self.op("Add", [frames, self.const(np.array(SEGMENT - 1, np.int64), "s")]), segment],
        )
        zero = self.const(np.array(0, np.int64), "zero")
        one = self.const(np.array(1, np.int64), "one")
        frame_segment = self.op("Div", [self.op("Range", [zero, frames, one]), segment])  # [T]
        segments = self.op("Range", [zero, n_segments, one])  # [S]
        member = self.op(
            "Cast",
            [
                self.op(
                    "Equal",
                    [
                        self.op(
                            "Unsqueeze", [frame_segment, self.const(np.array([1], np.int64), "a")]
                        ),
                        segments,
                    ],
                )
            ],
            to=TensorProto.FLOAT,
        )  # [T, S]: frame t lies in segment s
        counts = self.op(
            "ReduceSum", [member, self.const(np.array([0], np.int64), "a")], keepdims=1
        )
        return self.op("Div", [member, counts]), self.op("Transpose", [member], perm=[1, 0])

    def cam_layer(self, x: str, prefix: str, dilation: int, pooling: tuple[str, str]) -> str:
        average, spread = pooling
        local = self.conv(x, f"{prefix}.linear_local", pad=dilation, dilation=dilation)
        mean = self.op("ReduceMean", [x], axes=[2], keepdims=1)
        segment_means = self.op("MatMul", [self.op("MatMul", [x, average]), spread])
        context = self.op("Add", [mean, segment_means])
        context = self.op("Relu", [self.conv(context, f"{prefix}.linear1", bias=True)])
        gate = self.op("Sigmoid", [self.conv(context, f"{prefix}.linear2", bias=True)])
        return self.op("Mul", [local, gate])

    def dense_block(
        self, x: str, prefix: str, layers: int, dilation: int, pooling: tuple[str, str]
    ) -> str:
        for i in range(1, layers + 1):
            p = f"{prefix}.tdnnd{i}"
            y = self.conv(self.bn_relu(x, f"{p}.nonlinear1.batchnorm"), f"{p}.linear1")
            y = self.cam_layer(
                self.bn_relu(y, f"{p}.nonlinear2.batchnorm"), f"{p}.cam_layer", dilation, pooling
            )
            x = self.op("Concat", [x, y], axis=1)
        return x

    def stats_pool(self, x: str) -> str:
        """Mean and unbiased standard deviation over time: [B, C, T] -> [B, 2C, 1]."""
        mean = self.op("ReduceMean", [x], axes=[2], keepdims=1)
        centred = self.op("Sub", [x, mean])
        squares = self.op(
            "ReduceSum", [self.op("Mul", [centred, centred]), self.axes_time], keepdims=1
        )
        frames = self.op(
            "Cast",
            [self.op("Gather", [self.op("Shape", [x]), self.const(np.array(2, np.int64), "i")])],
            to=TensorProto.FLOAT,
        )
        one = self.const(np.array(1.0, np.float32), "one")
        std = self.op("Sqrt", [self.op("Div", [squares, self.op("Sub", [frames, one])])])
        return self.op("Concat", [mean, std], axis=1)


def build_campplus_graph(weights: Mapping[str, np.ndarray], n_mels: int = 80) -> onnx.ModelProto:
    """Return the ONNX model of CAM++ for the given 3D-Speaker state dict."""
    g = _CampplusBuilder(weights)
    x = g.head(g.op("Transpose", ["feats"], perm=[0, 2, 1]))  # [B, 320, T]
    x = g.bn_relu(
        g.conv(x, "xvector.tdnn.linear", stride=2, pad=2), "xvector.tdnn.nonlinear.batchnorm"
    )
    pooling = g.segment_pooling(x)
    for i, (layers, dilation) in enumerate(BLOCKS, start=1):
        x = g.dense_block(x, f"xvector.block{i}", layers, dilation, pooling)
        x = g.conv(
            g.bn_relu(x, f"xvector.transit{i}.nonlinear.batchnorm"), f"xvector.transit{i}.linear"
        )
    x = g.bn_relu(x, "xvector.out_nonlinear.batchnorm")
    x = g.conv(g.stats_pool(x), "xvector.dense.linear")
    x = g.batch_norm(x, "xvector.dense.nonlinear.batchnorm", affine=False)
    x = g.op("Squeeze", [x, g.axes_time])
    inputs = [
        helper.make_tensor_value_info("feats", TensorProto.FLOAT, ["batch", "frames", n_mels])
    ]
    return g.model("campplus", x, inputs, dim=EMBEDDING_DIM)
