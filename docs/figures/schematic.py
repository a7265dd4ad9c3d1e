"""The README's picture: HASTE on one input window, computed by ``haste.hashing``.

    python docs/figures/schematic.py    # writes docs/figures/haste_schematic.png

A toy 5x5 window (the input of one 3x3 output tile of a 3x3 conv) with eight channels, each a
noisy copy of one of three patterns. The channels are centred across channels, projected on L = 4
sparse ternary hyperplanes and hashed to codes; channels with equal codes are averaged, so the conv
runs on as many channels as there are buckets, with the filter slices of each bucket summed.
"""

from __future__ import annotations

from pathlib import Path

import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from haste.hashing import bucket_ids, codes_from_projections, draw_hyperplanes, merge_channels
from haste.repro.plotting import new_figure, save_figure, styled

OUT = Path(__file__).resolve().with_name("haste_schematic.png")
SIDE, CHANNELS, HYPERPLANES = 5, 8, 4
PATTERN_OF_CHANNEL = [0, 1, 0, 2, 1, 0, 2, 1]
COLOURS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]


def toy_window() -> torch.Tensor:
    """``[pixels, channels]``: every channel a noisy copy of one of three 5x5 patterns."""
    generator = torch.Generator().manual_seed(0)
    y, x = torch.meshgrid(torch.arange(SIDE), torch.arange(SIDE), indexing="ij")
    patterns = [
        (x + y).float() / (2 * SIDE - 2),  # a diagonal ramp
        ((x - 2) ** 2 + (y - 2) ** 2 <= 2).float(),  # a spot
        (x % 2).float(),  # stripes
    ]
    channels = [patterns[p] + 0.15 * torch.randn(SIDE, SIDE, generator=generator) for p in PATTERN_OF_CHANNEL]
    return torch.stack(channels, dim=-1).reshape(SIDE * SIDE, CHANNELS)


def hashed(window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Codes, bucket ids and the bucket means of ``window`` (as one HASTE layer computes them)."""
    centred = window - window.mean(dim=1, keepdim=True)  # per pixel, over channels
    planes = draw_hyperplanes(SIDE * SIDE, HYPERPLANES, sparsity=2 / 3, seed=0)
    codes = codes_from_projections(centred.T @ planes)  # one code per channel
    ids, _ = bucket_ids(codes[None])
    merged = merge_channels(window[None], ids)[0]
    return codes.long(), ids[0], merged


@styled
def draw(window, codes, ids, merged) -> Figure:
    figure = new_figure(10, 4.1)
    figure.set_layout_engine("none")  # one axis over the whole canvas, drawn in its own units
    axis = figure.add_axes((0, 0, 1, 1))
    axis.set_xlim(0, 20.5)
    axis.set_ylim(-0.3, 8.0)
    axis.axis("off")
    buckets = int(ids.max()) + 1
    image = lambda column: column.reshape(SIDE, SIDE).numpy()
    vmin, vmax = float(window.min()), float(window.max())
    rows = torch.argsort(ids, stable=True)  # channels grouped by bucket, top to bottom
    for slot, channel in enumerate(rows.tolist()):
        y = 6.3 - slot * 0.82
        colour = COLOURS[int(ids[channel])]
        axis.imshow(
            image(window[:, channel]),
            extent=(0.6, 1.3, y - 0.35, y + 0.35),
            cmap="gray",
            vmin=vmin,
            vmax=vmax,
        )
        axis.add_patch(Rectangle((0.6, y - 0.35), 0.7, 0.7, fill=False, ec=colour, lw=2))
        axis.text(0.45, y, f"c{channel}", ha="right", va="center", fontsize=9)
        bits = format(int(codes[channel]), f"0{HYPERPLANES}b")[::-1]  # bit l = hyperplane l
        axis.text(4.6, y, bits, ha="center", va="center", fontsize=10, family="monospace", color=colour)
        axis.annotate("", (3.9, y), (1.45, y), arrowprops={"arrowstyle": "->", "color": "0.6", "lw": 0.8})
        merged_y = 6.0 - int(ids[channel]) * 1.75
        axis.annotate(
            "", (10.3, merged_y), (5.4, y), arrowprops={"arrowstyle": "->", "color": colour, "lw": 0.8}
        )
    for bucket in range(buckets):
        y = 6.0 - bucket * 1.75
        member = int((ids == bucket).nonzero()[0])
        colour = COLOURS[bucket]
        axis.imshow(
            image(merged[:, member]), extent=(10.4, 11.6, y - 0.6, y + 0.6), cmap="gray", vmin=vmin, vmax=vmax
        )
        axis.add_patch(Rectangle((10.4, y - 0.6), 1.2, 1.2, fill=False, ec=colour, lw=2.5))
        size = int((ids == bucket).sum())
        label = (
            f"mean of {size} channels\nsum of their filter slices"
            if size > 1
            else "a lone channel,\nkept as it is"
        )
        axis.text(11.8, y, label, va="center", fontsize=8)
    header = {"ha": "center", "va": "bottom", "fontsize": 9}
    axis.text(
        0.2,
        6.85,
        f"input window:\n{CHANNELS} channels, {SIDE}x{SIDE},\nlisted by bucket",
        **header | {"ha": "left"},
    )
    axis.text(
        4.6, 6.85, f"code: the signs of\n{HYPERPLANES} ternary projections\n(bit l: hyperplane l)", **header
    )
    axis.text(11.0, 6.85, f"{buckets} buckets, one per code:\nthe merged channels", **header)
    # a bracket over the merged channels, where the arrow to the conv starts
    top, bottom, bracket = 6.0 + 0.6, 6.0 - (buckets - 1) * 1.75 - 0.6, 14.75
    axis.plot(
        [bracket - 0.15, bracket, bracket, bracket - 0.15], [top, top, bottom, bottom], color="0.3", lw=1
    )
    middle = (top + bottom) / 2
    axis.annotate(  # the arrow runs from the bracket to the box's edge
        f"3x3 conv at depth {buckets}\ninstead of {CHANNELS}\n\nper patch and image;\n"
        "centred before hashing;\nL steers the depth",
        (bracket, middle),
        xytext=(18.4, middle),
        ha="center",
        va="center",
        fontsize=9,
        bbox={"boxstyle": "round", "fc": "0.95", "ec": "0.6"},
        arrowprops={"arrowstyle": "<-", "lw": 1.2, "shrinkA": 0, "shrinkB": 0},
    )
    return figure


def make_figure() -> Figure:
    """The picture, from the toy window hashed by ``haste.hashing``."""
    window = toy_window()
    return draw(window, *hashed(window))


def main() -> None:
    save_figure(make_figure(), OUT.parent, OUT.stem, formats=("png",))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
