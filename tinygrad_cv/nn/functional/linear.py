"""The fully connected layer as one fused op: y = x W^T + b."""
from __future__ import annotations

from ...graph import Op
from ...tensors import Tensor


class LinearOp(Op):
    """y = x @ W^T + b with W of shape (out, in); x may have extra leading axes."""

    name, inputs = "linear", ("x", "W", "b")
    derivatives = ("W, so dx = up @ W", "x, so dW = up^T @ x", "1, so db = sum of up over the batch")

    def __init__(self, has_bias: bool):
        self.has_bias = has_bias

    def forward(self, ctx, x, w, b=None):
        ctx.save_for_backward(x, w)
        y = x @ w.T
        if b is not None:
            y += b
        return y

    def backward(self, ctx, up):
        # dL/dx = up @ W,  dL/dW = up^T @ x,  dL/db = sum of up over the batch
        x, w = ctx.saved_tensors
        up2 = up.reshape(-1, up.shape[-1])
        dx = up @ w
        dw = up2.T @ x.reshape(-1, x.shape[-1])
        if self.has_bias:
            return dx, dw, up2.sum(axis=0)
        return dx, dw


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """PyTorch's F.linear: ``x @ weight.T + bias`` with weight (out_features, in_features)."""
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be (out_features, in_features), got shape {weight.shape}")
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {x.shape} does not match weight of shape {weight.shape}: "
                         f"expected (*, {weight.shape[1]})")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    if bias is None:
        return Tensor.apply(_LINEAR_NO_BIAS, x, weight)
    return Tensor.apply(_LINEAR, x, weight, bias)


_LINEAR, _LINEAR_NO_BIAS = LinearOp(True), LinearOp(False)


def maxout(x: Tensor, weight: Tensor, bias: Tensor | None = None, pieces: int = 2) -> Tensor:
    """Maxout (Goodfellow et al.): the max of ``pieces`` linear functions per output.

    weight is (out_features * pieces, in_features); rows o*pieces .. o*pieces+pieces-1 are the
    pieces of output o. The gradient flows only into the winning piece (max routes).
    """
    if pieces < 1 or weight.shape[0] % pieces:
        raise ValueError(f"maxout: weight rows {weight.shape[0]} are not a multiple of pieces={pieces}")
    z = linear(x, weight, bias)
    return z.reshape(z.shape[:-1] + (weight.shape[0] // pieces, pieces)).amax(dim=-1)
