"""ConvTranspose2d: a learned upsampling, each input pixel scattering a filter into the output."""
from __future__ import annotations

from .. import functional as F
from .conv import ConvNd, IntOrPair
from ...tensors import Tensor


class ConvTranspose2d(ConvNd):
    """PyTorch's nn.ConvTranspose2d: weight (in_channels, out_channels/groups, kh, kw), bias (out_channels,).

    Output size per axis (H - 1)*S - 2P + D*(k - 1) + output_padding + 1: with k = S = 2 and
    P = 0 it exactly doubles the map. Default init as PyTorch, which takes fan_in from the
    weight's second axis: out_channels/groups * kh * kw.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair, stride: IntOrPair = 1,
                 padding: IntOrPair = 0, output_padding: IntOrPair = 0, groups: int = 1, bias: bool = True,
                 dilation: IntOrPair = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups, bias, transposed=True,
                         extra={"output_padding": (output_padding, 0, 0), "dilation": (dilation, 1, 1)})
        if any(op >= s for op, s in zip(self.output_padding, self.stride)):
            raise ValueError(f"ConvTranspose2d: output_padding {self.output_padding} must be non-negative and "
                             f"smaller than the stride {self.stride}")

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                  self.groups, self.dilation)
