"""The figures' shared style and drawing primitives: one rcParams set, a palette by meaning, a sweep
drawn as a trade-off curve, labelled limits, and saving PNG and PDF so that a redraw is pixel-equal.

Every figure of the reproduction (:mod:`haste.repro.figures`) is drawn inside :func:`figure_style`:
matplotlib's defaults, then :data:`STYLE`, whatever the user's matplotlibrc says. Its fonts are the
DejaVu fonts bundled with matplotlib, so a redraw on another machine renders the same glyphs.
"""

from __future__ import annotations

import contextlib
import functools
import io
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

import matplotlib
import matplotlib.style
import matplotlib.text
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from ..conventions import CONVENTIONS

DPI = 150
# the versions that drew the committed figures. With the same matplotlib and FreeType a redraw is
# equal pixel for pixel, and with the same fontTools (its font subsets) the PDF byte for byte
# (tests/test_figures.py); other versions move antialiased edges by a little
DRAWN_WITH = {"matplotlib": "3.11.2", "freetype": "2.14.3", "fonttools": "4.68.0"}

STYLE: dict[str, Any] = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],  # bundled with matplotlib: no system font is picked
    "font.monospace": ["DejaVu Sans Mono"],
    "mathtext.fontset": "dejavusans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "figure.titlesize": 11,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "0.88",
    "grid.linewidth": 0.6,
    "axes.edgecolor": "0.35",
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "lines.linewidth": 1.4,
    "lines.markersize": 4,
    "errorbar.capsize": 2,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "figure.constrained_layout.use": True,
    "pdf.fonttype": 42,  # TrueType subsets: text stays text in the PDF
    "svg.hashsalt": "haste",  # SVG ids from a fixed salt, not a random one
    "svg.fonttype": "path",
    "image.cmap": "viridis",
}
SMALLEST_FONT = 8  # pt: no text is set smaller

# Colour by meaning: a model has one colour in every figure, a patch size another set, a FLOP
# accounting convention a third (blues: the whole model counted; oranges: conv + linear only;
# darker: more of the overhead counted). Okabe-Ito colours, safe for colour-blind readers.
MODEL_COLOURS = {
    "resnet18": "#56B4E9",
    "resnet34": "#0072B2",
    "resnet50": "#0072B2",
    "resnet50-keras": "#0072B2",
    "resnet101": "#009E73",
    "wide_resnet50_2": "#E69F00",
    "wide_resnet101_2": "#D55E00",
    "vgg11_bn": "#009E73",
    "vgg13_bn": "#E69F00",
    "vgg16_bn": "#CC79A7",
    "vgg19_bn": "#D55E00",
}
PATCH_COLOURS = {2: "#CC79A7", 3: "#0072B2", 4: "#E69F00"}
CONVENTION_COLOURS = {convention.name: convention.colour for convention in CONVENTIONS}
OTHER_COLOUR = "0.3"  # a model without a colour of its own
CONTEXT_COLOUR = "0.85"  # curves shown for comparison only
LIMIT_COLOUR = "0.4"
PAPER_MARKER: dict[str, Any] = {
    "marker": "*",
    "s": 170,
    "color": "gold",
    "edgecolors": "black",
    "linewidths": 0.8,
}

DISPLAY_NAMES = {
    "resnet18": "ResNet-18",
    "resnet34": "ResNet-34",
    "resnet50": "ResNet-50",
    "resnet101": "ResNet-101",
    "resnet50-keras": "ResNet-50 (Keras)",
    "wide_resnet50_2": "WideResNet-50-2",
    "wide_resnet101_2": "WideResNet-101-2",
    "vgg11_bn": "VGG-11-BN",
    "vgg13_bn": "VGG-13-BN",
    "vgg16_bn": "VGG-16-BN",
    "vgg19_bn": "VGG-19-BN",
}

# the accuracy-drop axis: linear up to DROP_LINEAR pp, where operating points lie, log above it,
# where small L collapse
DROP_LINEAR = 2.0
DROP_TICKS = [0, 0.5, 1, 1.5, 2, 5, 10, 20, 50]

_Function = TypeVar("_Function", bound=Callable[..., Any])


def architecture(model_name: str) -> str:
    """``"cifar10/vgg19_bn"`` -> ``"vgg19_bn"``."""
    return model_name.split("/", 1)[-1]


def display_name(model_name: str) -> str:
    """How a figure names a model: ``"cifar10/vgg19_bn"`` -> ``"VGG-19-BN"``."""
    return DISPLAY_NAMES.get(architecture(model_name), architecture(model_name))


def model_colour(model_name: str) -> str:
    return MODEL_COLOURS.get(architecture(model_name), OTHER_COLOUR)


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """matplotlib's defaults and then :data:`STYLE`, restored on exit."""
    with matplotlib.style.context(["default", STYLE]):
        yield


def styled(function: _Function) -> _Function:
    """Run a figure-drawing function inside :func:`figure_style` (artists read rcParams when made)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with figure_style():
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches, not registered with pyplot (no backend state)."""
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)  # the Agg renderer, whatever backend pyplot has
    return figure


def drop_axis(ax, label: str = "accuracy drop (pp)") -> None:
    """Symlog accuracy-drop axis with plain-number ticks: linear to :data:`DROP_LINEAR`, log above."""
    ax.set_yscale("symlog", linthresh=DROP_LINEAR, linscale=2.0)
    ax.yaxis.set_major_locator(FixedLocator(DROP_TICKS))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_ylabel(f"{label}\n(linear to {DROP_LINEAR:g}, log above)")


def draw_limit(ax, drop: float, text: str | None = None) -> None:
    """The allowed drop as a dashed line, its value written right of the axes, clear of the data."""
    ax.axhline(drop, color=LIMIT_COLOUR, ls="--", lw=0.9, zorder=1)
    ax.annotate(
        text or f"{drop:g} pp",
        (1, drop),
        xycoords=("axes fraction", "data"),
        xytext=(3, 0),
        textcoords="offset points",
        ha="left",
        va="center",
        fontsize=SMALLEST_FONT,
        color=LIMIT_COLOUR,
    )


def draw_sweep(
    ax,
    summary: pd.DataFrame,
    x: str = "flops_reduction",
    color=None,
    label: str | None = None,
    operating_hyperplanes: int | None = None,
    label_every_point: bool = False,
) -> list:
    """One sweep (rows of a ``summarize`` table over L) as accuracy drop against ``x`` on ``ax``.

    Error bars: std over hyperplane seeds on both axes. L is written at the curve's ends, or at every
    point (``label_every_point``); the operating point (``operating_hyperplanes``) is ringed instead,
    so give its L in ``label``. Returns the L labels, to be moved clear of the data by
    :func:`place_labels` once the figure is complete.
    """
    curve = summary.sort_values("num_hyperplanes")
    ax.errorbar(
        curve[x],
        curve.accuracy_drop,
        xerr=curve[x + "_std"],
        yerr=curve.accuracy_std,
        marker="o",
        ms=4,
        capsize=2,
        elinewidth=0.9,
        color=color,
        label=label,
    )
    labels = []
    for _, row in (curve if label_every_point else curve.iloc[[0, -1]]).iterrows():
        if row.num_hyperplanes != operating_hyperplanes:
            labels.append(
                ax.annotate(
                    f"L={int(row.num_hyperplanes)}",
                    (row[x], row.accuracy_drop),
                    fontsize=SMALLEST_FONT,
                    color=color,
                    xytext=(4, -4),
                    textcoords="offset points",
                    ha="left",
                    va="top",
                )
            )
    point = curve[curve.num_hyperplanes == operating_hyperplanes]
    ax.scatter(
        point[x], point.accuracy_drop, s=140, facecolors="none", edgecolors=color, linewidths=1.5, zorder=4
    )
    return labels


# where a label may sit around its point, in order of preference: offset (points), alignment
_PLACES = [
    ((4, -4), "left", "top"),
    ((-4, 4), "right", "bottom"),
    ((-4, -4), "right", "top"),
    ((4, 4), "left", "bottom"),
    ((6, 0), "left", "center"),
    ((-6, 0), "right", "center"),
    ((0, -7), "center", "top"),
    ((0, 7), "center", "bottom"),
    ((10, -10), "left", "top"),
    ((-10, 10), "right", "bottom"),
    ((-10, -10), "right", "top"),
    ((10, 10), "left", "bottom"),
]


class _Obstacle:
    """A drawn line (``path``) or set of markers (``points``), in pixels, that a label must not
    cover, ``pad`` pixels around it; ``weight``: how much covering it costs."""

    def __init__(self, pad: float, weight: float, path=None, points=None):
        self.pad, self.weight, self.path = pad, weight, path
        self.points = None if points is None else np.asarray(points).reshape(-1, 2)

    def touches(self, box) -> bool:
        if self.path is not None:
            return bool(self.path.intersects_bbox(box.padded(self.pad), filled=False))
        x, y = self.points[:, 0], self.points[:, 1]  # type: ignore[index]
        pad = self.pad
        return bool(((x > box.x0 - pad) & (x < box.x1 + pad) & (y > box.y0 - pad) & (y < box.y1 + pad)).any())


def _obstacles(ax) -> list[_Obstacle]:
    """Every line, error bar and marker drawn on ``ax``; grey context curves weigh less."""
    from matplotlib.colors import to_rgb
    from matplotlib.path import Path as MplPath

    scale = ax.figure.dpi / 72  # pixels per point
    weight = lambda colour: 0.2 if to_rgb(colour) == to_rgb(CONTEXT_COLOUR) else 1.0
    found = []
    for line in ax.lines:
        if not line.get_visible():
            continue
        path = line.get_transform().transform_path(line.get_path())
        if line.get_linestyle() not in ("None", "none", " ", ""):
            found.append(_Obstacle(line.get_linewidth() * scale / 2, weight(line.get_color()), path=path))
        if line.get_marker() not in (None, "None", "none", "", " "):
            pad = line.get_markersize() * scale / 2
            found.append(_Obstacle(pad, weight(line.get_color()), points=path.vertices))
    for collection in ax.collections:
        if not collection.get_visible():
            continue
        offsets = collection.get_offsets()
        sizes = collection.get_sizes() if hasattr(collection, "get_sizes") else []
        if len(offsets) and len(sizes):  # a scatter: markers of area s (points squared)
            centres = collection.get_offset_transform().transform(offsets)
            found.append(_Obstacle(float(np.sqrt(np.max(sizes))) * scale / 2, 1.0, points=centres))
            continue
        widths, colours = collection.get_linewidths(), collection.get_edgecolors()
        pad = (max(widths) if len(widths) else 1.0) * scale / 2
        cost = weight(colours[0][:3]) if len(colours) else 1.0
        for path in collection.get_paths():  # error bars: one segment each
            segment = collection.get_transform().transform_path(path)
            found.append(_Obstacle(pad, cost, path=MplPath(segment.vertices)))
    return found


def _within(box, frame) -> bool:
    return frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1


def place_labels(labels, distance: float = 1.0) -> None:
    """Move each label (an annotation offset from its point) to the first place around its point,
    in the order of ``_PLACES``, that covers no line, error bar or marker of its axes and no text
    placed before it, inside the axes; where every place covers something, the least covered.
    Past the axes' frame is a little worse than inside it; past the canvas is never chosen.

    Call it once the figure is complete: it draws the figure to measure the texts where they land.
    """
    if not labels:
        return
    fig = labels[0].figure
    with figure_style():
        fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    canvas = fig.bbox
    by_axes: dict[Any, list] = {}
    for label in labels:
        by_axes.setdefault(label.axes, []).append(label)
    for ax, members in by_axes.items():
        obstacles = _obstacles(ax)
        frame = ax.get_window_extent(renderer)
        # the texts already there (tick labels, titles, the limit's value) are taken places
        placed: list[Any] = [
            text.get_window_extent(renderer)
            for text in [*ax.get_xticklabels(), *ax.get_yticklabels(), ax.title, *ax.texts]
            if text not in members and text.get_visible() and text.get_text().strip()
        ]
        for label in members:
            best = None
            for offset, ha, va in _PLACES:
                label.xyann = offset
                label.set_horizontalalignment(ha)
                label.set_verticalalignment(va)
                box = label.get_window_extent(renderer).padded(distance)
                cost = sum(obstacle.weight for obstacle in obstacles if obstacle.touches(box))
                cost += 10.0 * sum(box.overlaps(other) for other in placed)  # never on another text
                cost += 0.0 if _within(box, frame) else 0.5
                cost += 0.0 if _within(box, canvas) else 100.0
                if best is None or cost < best[0] - 1e-9:
                    best = (cost, offset, ha, va)
                if cost == 0:
                    break
            assert best is not None
            _, offset, ha, va = best
            label.xyann = offset
            label.set_horizontalalignment(ha)
            label.set_verticalalignment(va)
            placed.append(label.get_window_extent(renderer).padded(distance))


def count(number: int, noun: str) -> str:
    """``count(1, "seed")`` -> ``"1 seed"``, ``count(3, "seed")`` -> ``"3 seeds"``."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def fit_lines(fig, text: str, fontsize: float, share: float = 0.96) -> str:
    """``text`` with its lines broken at spaces where they would be wider than ``share`` of the
    figure (matplotlib's own ``wrap`` wraps only when drawing, after the layout has measured it)."""
    from matplotlib.font_manager import FontProperties

    renderer = fig.canvas.get_renderer()
    font = FontProperties(size=fontsize)
    limit = share * fig.bbox.width
    width = lambda line: renderer.get_text_width_height_descent(line, font, ismath=False)[0]
    lines = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            wider = f"{line} {word}" if line else word
            if line and width(wider) > limit:
                lines.append(line)
                line = word
            else:
                line = wider
        lines.append(line)
    return "\n".join(lines)


def suptitle(fig, text: str) -> None:
    """The figure's title, broken into lines that fit its width."""
    with figure_style():
        fig.suptitle(fit_lines(fig, text, STYLE["figure.titlesize"]))


def drawn_texts(fig) -> list[tuple[str, Any]]:
    """Every non-empty text ``fig`` draws, with its window extent (pixels at the figure's dpi).

    Text.draw is wrapped for one draw: ticks outside the view and annotations whose point lies
    outside their axes exist as artists but are not drawn, and must not count.
    """
    drawn: list[tuple[str, Any]] = []
    draw = matplotlib.text.Text.draw

    def recording(text, renderer):
        draw(text, renderer)
        if text.get_visible() and text.get_text().strip():
            drawn.append((text.get_text(), text.get_window_extent(renderer)))

    with figure_style(), mock.patch.object(matplotlib.text.Text, "draw", recording):
        fig.draw_without_rendering()
    return drawn


def texts_outside_canvas(fig, tolerance: float = 0.5) -> list[str]:
    """The texts of ``fig`` that do not lie wholly inside its canvas (what a saved file would clip)."""
    canvas = fig.bbox
    return [
        f"{text!r} at x {box.x0:.0f}-{box.x1:.0f}, y {box.y0:.0f}-{box.y1:.0f} of {canvas.width:.0f}x"
        f"{canvas.height:.0f}"
        for text, box in drawn_texts(fig)
        if box.x0 < -tolerance
        or box.y0 < -tolerance
        or box.x1 > canvas.width + tolerance
        or box.y1 > canvas.height + tolerance
    ]


def save_figure(
    fig, directory: str | Path, name: str, dpi: int = DPI, formats: tuple[str, ...] = ("png", "pdf")
) -> list[Path]:
    """Write ``<directory>/<name>.png`` and ``.pdf``, drawn in :func:`figure_style`, with no
    timestamps or version strings, so that a redraw of the same rows gives the same files."""
    outside = texts_outside_canvas(fig)
    if outside:
        warnings.warn(f"{name}: text outside the canvas: {'; '.join(outside)}", stacklevel=2)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    metadata = {
        "png": {"Software": None},
        "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
        "svg": {"Date": None, "Creator": None},
    }
    paths = []
    with figure_style():
        for suffix in formats:
            path = directory / f"{name}.{suffix}"
            if suffix != "png":
                # the first vector draw of a figure places its texts a little differently from the
                # ones after it: draw once before writing, so that every save gives the same bytes
                fig.savefig(io.BytesIO(), format=suffix, dpi=dpi, metadata=metadata[suffix])
            fig.savefig(path, dpi=dpi, metadata=metadata[suffix])
            paths.append(path)
    return paths


def png_pixels(path_or_buffer) -> np.ndarray:
    """The RGBA pixels of a PNG as uint8 ``[height, width, 4]``."""
    import matplotlib.image

    pixels = matplotlib.image.imread(path_or_buffer, format="png")
    if pixels.dtype != np.uint8:
        pixels = np.round(pixels * 255).astype(np.uint8)
    if pixels.shape[-1] == 3:
        pixels = np.dstack([pixels, np.full(pixels.shape[:2], 255, np.uint8)])
    return pixels
