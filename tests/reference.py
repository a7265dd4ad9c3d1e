"""An independent, slow reference for HASTE: a plain Python loop over images and patches.

It builds each patch's buckets from the layer's ``hyperplanes`` with its own code, averages the
inputs and sums the filter slices of every bucket, and runs the reduced-depth convolution: the
paper's operation written as directly as possible, sharing no code with the package.

Non-finite inputs, by the package's rule: a channel with a NaN or an infinity in a patch's window
forms a group of its own, and the others are hashed as if those values were 0.

A projection within rounding of 0 is recomputed exactly (rational arithmetic on the input's values):
flat regions of real images give windows of equal pixels, where a hyperplane whose entries cancel
projects to exactly 0 and float rounding in either implementation could decide the bit.
"""

import copy
import math
from fractions import Fraction

import torch
import torch.nn.functional as F


def reference_haste_conv(x, weight, bias, stride, padding, hyperplanes, patch_size, centre=True, ties=None):
    """HASTE's output and every patch's bucket count, patch by patch (images, then tiles row-major).

    ``ties``: a list to which the index of every patch is appended where a projection is exactly 0
    although its terms are not: a float computation (the package's) may round it to either side.
    """
    n, c_in, height, width = x.shape
    c_out, _, kh, kw = weight.shape
    (sh, sw), (ph, pw) = stride, padding
    out_h = (height + 2 * ph - kh) // sh + 1
    out_w = (width + 2 * pw - kw) // sw + 1
    win_h, win_w = (patch_size - 1) * sh + kh, (patch_size - 1) * sw + kw
    planes = hyperplanes.to(x.dtype).view(win_h, win_w, -1)  # hashed in the input dtype, as the package
    padded = F.pad(x, (pw, pw, ph, ph))
    out = torch.zeros(n, c_out, out_h, out_w, dtype=x.dtype)
    buckets_per_patch = []
    for image in range(n):
        for tile_row in range(math.ceil(out_h / patch_size)):
            for tile_col in range(math.ceil(out_w / patch_size)):
                top, left = tile_row * patch_size, tile_col * patch_size
                rows, cols = min(patch_size, out_h - top), min(patch_size, out_w - left)
                read_h, read_w = (rows - 1) * sh + kh, (cols - 1) * sw + kw
                window = padded[image, :, top * sh : top * sh + read_h, left * sw : left * sw + read_w]
                finite = torch.isfinite(window)
                zeroed = torch.where(finite, window, torch.zeros_like(window))
                hashed = zeroed - zeroed.mean(0, keepdim=True) if centre else zeroed
                plane_rows = planes[:read_h, :read_w].reshape(-1, planes.shape[-1])
                projection = hashed.reshape(c_in, -1) @ plane_rows
                positive = (projection > 0).tolist()  # bit l of a code: projection l strictly positive
                tie = _exact_near_zero(positive, projection, zeroed.reshape(c_in, -1), plane_rows, centre)
                if tie and ties is not None:
                    ties.append(len(buckets_per_patch))
                all_finite = finite.reshape(c_in, -1).all(1).tolist()
                groups = {}
                for channel in range(c_in):
                    if not all_finite[channel]:
                        groups[("alone", channel)] = [channel]
                        continue
                    code = sum(1 << bit for bit, on in enumerate(positive[channel]) if on)  # a Python int
                    groups.setdefault(code, []).append(channel)
                merged_input = torch.stack([window[members].mean(0) for members in groups.values()])
                merged_weight = torch.stack([weight[:, members].sum(1) for members in groups.values()], 1)
                tile = F.conv2d(merged_input[None], merged_weight, bias, (sh, sw))
                out[image, :, top : top + rows, left : left + cols] = tile[0]
                buckets_per_patch.append(len(groups))
    return out, buckets_per_patch


def _exact_near_zero(positive, projection, values, plane_rows, centre):
    """Set ``positive[c][l]`` from the exact projection wherever the float one is within rounding of 0;
    returns whether an exact projection is 0 (a tie)."""
    bound = 2 * values.abs().max() * plane_rows.abs().sum(0).max()  # no projection is larger
    near = (projection.abs() <= 1e-9 * bound).nonzero().tolist()
    if not near:
        return False
    exact = [[Fraction(v) for v in row] for row in values.detach().tolist()]  # [channels][pixels]
    means = [sum(column) / len(exact) if centre else 0 for column in zip(*exact)]
    planes = plane_rows.detach().tolist()  # [pixels][L]
    tie = False
    for channel, plane in near:
        terms = [(Fraction(row[plane]), p) for p, row in enumerate(planes) if row[plane]]
        total = sum(r * (exact[channel][p] - means[p]) for r, p in terms)
        positive[channel][plane] = total > 0
        tie = tie or (total == 0 and any(exact[channel][p] != means[p] for _, p in terms))  # terms cancel
    return tie


class ReferenceConv(torch.nn.Module):
    """A converted layer run through :func:`reference_haste_conv` (its weights, hyperplanes, settings)."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        layer = self.layer
        args = (layer.weight, layer.bias, layer.stride, layer.padding, layer.hyperplanes, layer.patch_size)
        return reference_haste_conv(x, *args, centre=layer.centre)[0]


def reference_model(converted):
    """A copy of ``converted`` whose HASTE layers (the modules with ``hyperplanes``) run the loop above."""
    model = copy.deepcopy(converted)
    for name, module in list(model.named_modules()):
        if name and hasattr(module, "hyperplanes"):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, ReferenceConv(module))
    return model
