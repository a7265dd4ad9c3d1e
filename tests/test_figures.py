"""Every committed figure is redrawn from the committed CSVs and must equal the committed file; no
text of any figure may lie outside its canvas; and what issue 29 found wrong in them stays fixed.

Equality: with the matplotlib and FreeType of ``plotting.DRAWN_WITH`` the PNG's pixels are equal
one for one (and, with its fontTools, the PDF's bytes). With other versions, which move antialiased
edges a little, the PNG may differ from the committed one by an RMS of at most ``RMS_TOLERANCE``
(on 0-255, as matplotlib's image comparison measures it); a moved mark or label exceeds it.
"""

import importlib.util
from pathlib import Path

import fontTools
import matplotlib
import matplotlib.ft2font
import numpy as np
import pandas as pd
import pytest
from matplotlib import font_manager
from matplotlib.collections import PathCollection
from matplotlib.colors import LogNorm, to_rgb
from matplotlib.testing.compare import calculate_rms

from haste.repro import figures, plotting

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
SCHEMATIC = ROOT / "docs" / "figures" / "schematic.py"
RMS_TOLERANCE = 2.0
VERSIONS = {
    "matplotlib": matplotlib.__version__,
    "freetype": matplotlib.ft2font.__freetype_version__,
    "fonttools": fontTools.version,
}
SAME_PIXELS = all(VERSIONS[key] == plotting.DRAWN_WITH[key] for key in ("matplotlib", "freetype"))
SAME_BYTES = VERSIONS == plotting.DRAWN_WITH


def _schematic():
    spec = importlib.util.spec_from_file_location("schematic", SCHEMATIC)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_figure()


# name -> (how it is drawn, the committed PNG)
COMMITTED = {
    **{
        name: (lambda name=name: figures.draw(name, RESULTS), RESULTS / "figures" / f"{name}.png")
        for name in figures.FIGURES
    },
    "haste_schematic": (_schematic, SCHEMATIC.with_name("haste_schematic.png")),
}


@pytest.fixture(scope="module")
def drawn():
    """Each figure, drawn once from the committed CSVs and reused by the tests below."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = COMMITTED[name][0]()
        return cache[name]

    return get


def test_every_committed_figure_has_a_drawing_function():
    committed = {path.stem for path in (RESULTS / "figures").glob("*.png")}
    assert committed == set(figures.FIGURES)
    assert {path.stem for path in (RESULTS / "figures").glob("*.pdf")} == committed


def test_the_fonts_are_matplotlibs_own():
    bundled = Path(matplotlib.get_data_path()) / "fonts"
    with plotting.figure_style():
        for family in ("DejaVu Sans", "DejaVu Sans Mono"):
            assert Path(font_manager.findfont(family, fallback_to_default=False)).is_relative_to(bundled)


@pytest.mark.parametrize("name", list(COMMITTED))
def test_a_redraw_from_the_committed_rows_equals_the_committed_figure(name, drawn, tmp_path):
    committed_png = COMMITTED[name][1]
    formats = ("png",) if name == "haste_schematic" else ("png", "pdf")
    plotting.save_figure(drawn(name), tmp_path, name, formats=formats)
    new, old = plotting.png_pixels(tmp_path / f"{name}.png"), plotting.png_pixels(committed_png)
    redraw = "redraw with `python -m haste.repro.figures` (docs/figures/schematic.py for the schematic)"
    assert new.shape == old.shape, f"{name}: {new.shape[:2]} pixels, committed {old.shape[:2]}; {redraw}"
    if SAME_PIXELS:
        differing = int((new != old).any(axis=-1).sum())
        assert differing == 0, f"{name}: {differing} pixels differ from the committed PNG; {redraw}"
    else:
        rms = calculate_rms(old[..., :3].astype(float), new[..., :3].astype(float))
        assert rms <= RMS_TOLERANCE, f"{name}: RMS {rms:.2f} (versions {VERSIONS}); {redraw}"
    if "pdf" in formats and SAME_BYTES:
        committed_pdf = committed_png.with_suffix(".pdf").read_bytes()
        assert (tmp_path / f"{name}.pdf").read_bytes() == committed_pdf, f"{name}.pdf differs; {redraw}"


@pytest.mark.parametrize("name", list(COMMITTED))
def test_no_text_lies_outside_the_canvas(name, drawn):
    assert plotting.texts_outside_canvas(drawn(name)) == []


@pytest.mark.parametrize(
    "name", ["cifar10_tradeoff", "patch_compression", "cifar10_patch_size", "imagenet_tradeoff"]
)
def test_no_two_texts_of_an_axes_overlap(name, drawn):
    fig = drawn(name)
    plotting.drawn_texts(fig)  # a draw: the texts' extents as saved
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        texts = [text for text in ax.texts if text.get_text().strip()]
        extents = [text.get_window_extent(renderer) for text in texts]
        for i in range(len(texts)):
            for j in range(i + 1, len(texts)):
                assert not extents[i].overlaps(extents[j]), (texts[i].get_text(), texts[j].get_text())


def _scatter_offsets(ax, size):
    """The points of the scatters of marker area ``size`` on ``ax``."""
    return [
        tuple(offset)
        for collection in ax.collections
        if isinstance(collection, PathCollection) and len(collection.get_sizes())
        if collection.get_sizes()[0] == size
        for offset in collection.get_offsets()
    ]


def _stars(ax):
    return _scatter_offsets(ax, plotting.PAPER_MARKER["s"])


def _panels(fig):
    return {ax.get_title().split("\n")[0]: ax for ax in fig.axes if ax.get_visible() and ax.get_title()}


def test_the_cifar10_tradeoff_stars_only_the_papers_cifar10_points(drawn):
    # the paper's ImageNet ResNet34 (18.69% at 1.25 pp) shares the architecture's name: not shown here
    panels = _panels(drawn("cifar10_tradeoff"))
    assert set(panels) == {"ResNet-18", "ResNet-34", "VGG-11-BN", "VGG-13-BN", "VGG-16-BN", "VGG-19-BN"}
    stars = {title: _stars(ax) for title, ax in panels.items()}
    assert stars.pop("ResNet-34") == [(46.72, 1.25)]
    assert stars.pop("VGG-19-BN") == [(38.83, 1.63)]
    assert all(found == [] for found in stars.values()), stars


def _dashed_levels(ax):
    return [line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == "--"]


def test_each_cifar10_panel_draws_its_own_models_limit_with_its_ring_within_it(drawn):
    panels = _panels(drawn("cifar10_tradeoff"))
    for title, ax in panels.items():
        limit = 1.63 if title == "VGG-19-BN" else 1.25  # the paper's drops; 1.25 pp where it has none
        assert _dashed_levels(ax) == [limit]
        assert f"{limit:g} pp" in [text.get_text() for text in ax.texts]
        rings = _scatter_offsets(ax, 140)  # draw_sweep's ring
        assert len(rings) == 1 and rings[0][1] <= limit


def test_the_drop_axis_reads_below_one_pp(drawn):
    ax = drawn("cifar10_tradeoff").axes[0]
    ticks = [tick for tick in ax.get_yticks() if ax.get_ylim()[0] <= tick <= ax.get_ylim()[1]]
    assert [tick for tick in ticks if tick <= 1.5] == [0, 0.5, 1, 1.5]
    assert [label.get_text() for label in ax.get_yticklabels()][:4] == ["0", "0.5", "1", "1.5"]


def test_the_patch_size_figure_shows_every_point_and_its_limits(drawn):
    fig = drawn("cifar10_patch_size")
    sweeps = ["cifar10_sweep_summary.csv", "cifar10_patch2_sweep_summary.csv"]
    rows = pd.concat([pd.read_csv(RESULTS / sweep) for sweep in sweeps])
    panels = _panels(fig)
    for model, title, limit in [
        ("cifar10/resnet34", "ResNet-34", 1.25),
        ("cifar10/vgg19_bn", "VGG-19-BN", 1.63),
    ]:
        ax = next(ax for key, ax in panels.items() if key.startswith(title))
        points = rows[rows.model == model]
        low, high = ax.get_ylim()
        assert low <= points.accuracy_drop.min() and points.accuracy_drop.max() <= high  # none off the top
        left, right = ax.get_xlim()
        span = points.flops_reduction.max() - points.flops_reduction.min()
        assert right - points.flops_reduction.max() < 0.1 * span  # the axis ends where the data do
        assert _dashed_levels(ax) == [limit] and f"{limit:g} pp" in [text.get_text() for text in ax.texts]
    assert fig.axes[0].get_title().startswith("ResNet-34")  # a display name, not the id


def test_the_patch_compression_colours_layer1_apart_from_layer4(drawn):
    fig = drawn("patch_compression")
    ax = fig.axes[0]
    mesh = ax.collections[0]
    assert isinstance(mesh.norm, LogNorm)  # layer4's shares near 1 do not flatten the others
    ticks = list(ax.get_yticks())
    assert ticks[0] == 0 and ticks[-1] == pytest.approx(1.0)  # edges labelled, the bottom one too
    assert "1,000 test images" in fig.get_suptitle()


def test_the_imagenet_axis_holds_its_data_and_names_the_papers_points(drawn):
    fig = drawn("imagenet_tradeoff")
    ax = fig.axes[0]
    summary = pd.read_csv(RESULTS / "imagenet_sweep_summary.csv")
    left, right = ax.get_xlim()
    span = summary.flops_reduction.max() - summary.flops_reduction.min()
    assert right < summary.flops_reduction.max() + 0.5 * span  # not stretched to the paper's 31.54%
    legend = [text.get_text() for text in fig.legends[0].get_texts()]
    assert any("18.69%" in text and "right of this axis" in text for text in legend)
    assert any("31.54%" in text for text in legend)
    assert any("interpolated at 1.25 pp" in text and "interval" in text for text in legend)  # the bar
    assert "crop224" not in fig.get_suptitle()


def test_the_reconciliation_colours_and_legend_follow_the_baseline(drawn):
    fig = drawn("paper_reconciliation")
    legend = [text.get_text() for text in fig.legends[0].get_texts()]
    assert legend[0] == "dense baseline: whole model (fvcore)"
    assert legend[4] == "dense baseline: conv + linear only"
    assert legend[1:4] == legend[5:8] == ["all overhead", "overhead without the filter merge", "no overhead"]
    for ax in fig.axes:
        bars = list(ax.patches)
        assert len(bars) == 18  # 3 patch sizes x 6 conventions
        colours = [to_rgb(bar.get_facecolor()) for bar in bars]
        # bars are drawn convention by convention (3 patch sizes each): whole model first, blue
        assert all(blue > red for red, _, blue in colours[:9])
        assert all(red > blue for red, _, blue in colours[9:])


def test_the_checkpoint_figure_joins_no_checkpoints_and_says_why_one_is_missing(drawn):
    fig = drawn("checkpoint_quality")
    ax = fig.axes[0]
    for line in ax.lines:
        if line.get_linestyle() == "None":
            continue  # markers only
        xs = np.unique(line.get_xdata())
        assert len(xs) <= 1, "a line joins checkpoints"  # only the two readings of one checkpoint
    legend = " ".join(text.get_text() for text in fig.legends[0].get_texts())
    assert "1-epoch checkpoint (dense 31.4%)" in legend and "every L measured (15, 16, 20)" in legend
    assert all(text.get_fontsize() >= plotting.SMALLEST_FONT for text in ax.texts)


def test_texts_outside_the_canvas_are_found(tmp_path):
    with plotting.figure_style():
        fig = plotting.new_figure(3, 2)
        fig.set_layout_engine("none")  # the texts stay where they are put
        ax = fig.subplots()
        ax.set_xlim(0, 1)
        ax.set_xticks([0, 0.5, 1, 5])  # the tick at 5 is not drawn: it must not count
        fig.text(0.5, 0.5, "inside")
        fig.text(0.98, 0.5, "crosses the right edge")
        ax.annotate("below", (0.5, 0), xytext=(0, -200), textcoords="offset points")
    outside = plotting.texts_outside_canvas(fig)
    assert sorted(entry.split("'")[1] for entry in outside) == ["below", "crosses the right edge"]
    with pytest.warns(UserWarning, match="outside the canvas"):
        plotting.save_figure(fig, tmp_path, "clipped", formats=("png",))


def _read(name):
    return pd.read_csv(RESULTS / name, dtype={"weights_sha256": str})


def _one_model(frame, model, **columns):
    return frame[frame.model == model].assign(**columns)


# quick mode's shapes, cut from the committed rows: one model, few L, one seed, few images
SMALL = {
    "cifar10_tradeoff": lambda: figures.cifar10_tradeoff(
        _one_model(_read("cifar10_sweep_summary.csv"), "cifar10/resnet18", seeds=1, images=200).iloc[[0, 4]]
    ),
    "patch_compression": lambda: figures.patch_compression(
        _read("patch_compression.csv").pipe(lambda rows: rows[rows.layer.str.match(r"layer[1-4]\.[01]\.")])
    ),
    "cifar10_patch_size": lambda: figures.cifar10_patch_size(
        _read("cifar10_sweep_summary.csv"),
        _one_model(_read("cifar10_patch2_sweep_summary.csv"), "cifar10/resnet34", seeds=1).iloc[:2],
        _one_model(_read("cifar10_patch_size_table.csv"), "cifar10/resnet34"),
    ),
    "paper_reconciliation": lambda: figures.paper_reconciliation(
        _one_model(_read("paper_reconciliation.csv"), "cifar10/resnet34", seeds=1)
    ),
    "checkpoint_quality": lambda: figures.checkpoint_quality(
        _read("checkpoint_quality_points.csv").iloc[:0],
        _read("checkpoint_quality_summary.csv").query("epochs == 1"),
    ),
}


@pytest.mark.parametrize("name", list(SMALL))
def test_a_figure_of_one_model_fits_its_canvas_too(name):
    fig = SMALL[name]()
    assert plotting.texts_outside_canvas(fig) == []
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        extents = [text.get_window_extent(renderer) for text in ax.texts if text.get_text().strip()]
        assert not any(one.overlaps(other) for i, one in enumerate(extents) for other in extents[i + 1 :])
