"""Build SpeechBrain's ECAPA-TDNN as an ONNX graph straight from its weights.

The network mirrors ``speechbrain.lobes.models.ECAPA_TDNN`` (v1.x) operation for
operation, so the embeddings match the reference implementation:

* every ``Conv1d`` pads "same" with *reflect* padding before a valid convolution;
* a TDNN block is conv -> ReLU -> BatchNorm (eval mode, eps 1e-5);
* SE blocks and attentive statistics pooling honour per-clip relative lengths,
  so padded clips in a batch give the same statistics as SpeechBrain's.

Graph inputs: ``feats`` [batch, frames, 80] (mean-normalised log-mel fbank) and
``lengths`` [batch] (each clip's share of ``frames``, 1.0 for the longest).
Output: ``embedding`` [batch, 192].
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper

from voiceprint.embedding.onnx_builder import GraphBuilder

BN_EPS = 1e-5
STATS_EPS = 1e-12

CHANNELS = (1024, 1024, 1024, 1024, 3072)
KERNEL_SIZES = (5, 3, 3, 3, 1)
DILATIONS = (1, 2, 3, 4, 1)
RES2NET_SCALE = 8


class _EcapaBuilder(GraphBuilder):
    # --- SpeechBrain building blocks -------------------------------------------------

    def conv(self, x: str, prefix: str, kernel: int = 1, dilation: int = 1) -> str:
        """speechbrain.nnet.CNN.Conv1d: reflect-pad to 'same', then a valid conv."""
        pad = dilation * (kernel - 1) // 2
        if pad:
            pads = self.const(np.array([0, 0, pad, 0, 0, pad], dtype=np.int64), "pads")
            x = self.op("Pad", [x, pads], mode="reflect")
        return self.op(
            "Conv",
            [x, self.weight(f"{prefix}.conv.weight"), self.weight(f"{prefix}.conv.bias")],
            dilations=[dilation],
        )

    def batch_norm(self, x: str, prefix: str) -> str:
        return self.op(
            "BatchNormalization",
            [
                x,
                self.weight(f"{prefix}.norm.weight"),
                self.weight(f"{prefix}.norm.bias"),
                self.weight(f"{prefix}.norm.running_mean"),
                self.weight(f"{prefix}.norm.running_var"),
            ],
            epsilon=BN_EPS,
        )

    def tdnn(self, x: str, prefix: str, kernel: int = 1, dilation: int = 1) -> str:
        x = self.conv(x, f"{prefix}.conv", kernel, dilation)
        return self.batch_norm(self.op("Relu", [x]), f"{prefix}.norm")

    def res2net(self, x: str, prefix: str, kernel: int, dilation: int) -> str:
        chunks = self.ops("Split", [x], RES2NET_SCALE, axis=1)
        outs = [chunks[0]]
        previous = None
        for i, chunk in enumerate(chunks[1:]):
            inp = chunk if previous is None else self.op("Add", [chunk, previous])
            previous = self.tdnn(inp, f"{prefix}.blocks.{i}", kernel, dilation)
            outs.append(previous)
        return self.op("Concat", outs, axis=1)

    def masked_mean(self, x: str, mask: str) -> str:
        """Mean over time of the frames the mask keeps: [B, C, T] -> [B, C, 1]."""
        total = self.op("ReduceSum", [self.op("Mul", [x, mask]), self.axes_time], keepdims=1)
        return self.op("Div", [total, self.op("ReduceSum", [mask, self.axes_time], keepdims=1)])

    def squeeze_excite(self, x: str, prefix: str, mask: str) -> str:
        s = self.masked_mean(x, mask)
        s = self.op("Relu", [self.conv(s, f"{prefix}.conv1")])
        s = self.op("Sigmoid", [self.conv(s, f"{prefix}.conv2")])
        return self.op("Mul", [s, x])

    def se_res2net(self, x: str, prefix: str, kernel: int, dilation: int, mask: str) -> str:
        residual = x
        x = self.tdnn(x, f"{prefix}.tdnn1")
        x = self.res2net(x, f"{prefix}.res2net_block", kernel, dilation)
        x = self.tdnn(x, f"{prefix}.tdnn2")
        x = self.squeeze_excite(x, f"{prefix}.se_block", mask)
        return self.op("Add", [x, residual])

    def weighted_stats(self, x: str, weights: str) -> tuple[str, str]:
        """Weighted mean and std over time (weights sum to 1): each [B, C, 1]."""
        mean = self.op("ReduceSum", [self.op("Mul", [x, weights]), self.axes_time], keepdims=1)
        centred = self.op("Sub", [x, mean])
        var = self.op(
            "ReduceSum",
            [self.op("Mul", [self.op("Mul", [centred, centred]), weights]), self.axes_time],
            keepdims=1,
        )
        eps = self.const(np.array(STATS_EPS, dtype=np.float32), "eps")
        return mean, self.op("Sqrt", [self.op("Max", [var, eps])])

    def attentive_pooling(self, x: str, mask: str, channels: int) -> str:
        """Attentive statistics pooling with global context: [B, C, T] -> [B, 2C, 1].

        SpeechBrain concatenates [x, mean, std] (3C channels) before a 1x1 conv;
        the conv is linear, so it is applied to x and to the time-constant stats
        separately and summed, which avoids materialising the 3C x T tensor.
        """
        total = self.op("ReduceSum", [mask, self.axes_time], keepdims=1)
        mean, std = self.weighted_stats(x, self.op("Div", [mask, total]))

        w = self.weights["asp.tdnn.conv.conv.weight"].astype(np.float32)
        w_x, w_stats = w[:, :channels], w[:, channels:]
        from_x = self.op("Conv", [x, self.const(w_x, "asp_wx")])
        from_stats = self.op(
            "Conv",
            [
                self.op("Concat", [mean, std], axis=1),
                self.const(w_stats, "asp_wstats"),
                self.weight("asp.tdnn.conv.conv.bias"),
            ],
        )
        attn = self.batch_norm(
            self.op("Relu", [self.op("Add", [from_x, from_stats])]), "asp.tdnn.norm"
        )
        attn = self.conv(self.op("Tanh", [attn]), "asp.conv")

        minus_inf = self.const(np.array(-np.inf, dtype=np.float32), "minus_inf")
        keep = self.op("Cast", [mask], to=TensorProto.BOOL)
        attn = self.op("Softmax", [self.op("Where", [keep, attn, minus_inf])], axis=2)
        mean, std = self.weighted_stats(x, attn)
        return self.op("Concat", [mean, std], axis=1)

    def frame_mask(self, feats_bct: str, lengths: str) -> str:
        """[B, 1, T] float mask: frame t of clip b is real when t < lengths[b] * T."""
        shape = self.op("Shape", [feats_bct])
        frames = self.op(
            "Cast",
            [self.op("Gather", [shape, self.const(np.array(2, dtype=np.int64), "idx")])],
            to=TensorProto.FLOAT,
        )
        zero = self.const(np.array(0.0, dtype=np.float32), "zero")
        one = self.const(np.array(1.0, dtype=np.float32), "one")
        steps = self.op("Range", [zero, frames, one])  # [T]
        limit = self.op(
            "Unsqueeze",
            [self.op("Mul", [lengths, frames]), self.const(np.array([1, 2], np.int64), "ax")],
        )  # [B, 1, 1]
        return self.op("Cast", [self.op("Less", [steps, limit])], to=TensorProto.FLOAT)


def build_ecapa_graph(weights: Mapping[str, np.ndarray], n_mels: int = 80) -> onnx.ModelProto:
    """Return the ONNX model of ECAPA-TDNN for the given SpeechBrain state dict."""
    g = _EcapaBuilder(weights)

    x = g.op("Transpose", ["feats"], perm=[0, 2, 1])  # [B, mels, T]
    mask = g.frame_mask(x, "lengths")

    x = g.tdnn(x, "blocks.0", KERNEL_SIZES[0], DILATIONS[0])
    block_outputs = []
    for i in range(1, len(CHANNELS) - 1):
        x = g.se_res2net(x, f"blocks.{i}", KERNEL_SIZES[i], DILATIONS[i], mask)
        block_outputs.append(x)

    x = g.tdnn(g.op("Concat", block_outputs, axis=1), "mfa", KERNEL_SIZES[-1], DILATIONS[-1])
    x = g.attentive_pooling(x, mask, CHANNELS[-1])
    x = g.batch_norm(x, "asp_bn")
    x = g.conv(x, "fc")
    x = g.op("Squeeze", [x, g.const(np.array([2], np.int64), "ax")])
    inputs = [
        helper.make_tensor_value_info("feats", TensorProto.FLOAT, ["batch", "frames", n_mels]),
        helper.make_tensor_value_info("lengths", TensorProto.FLOAT, ["batch"]),
    ]
    return g.model("ecapa_tdnn", x, inputs, dim=192)
