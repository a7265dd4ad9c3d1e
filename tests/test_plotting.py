"""The figures' primitives: a sweep's curve, label placement, the drop axis, the style, saving."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from haste.repro import plotting
from haste.repro.plotting import draw_sweep


def _summary():
    # rows out of L order, as a summary filtered from several models can be
    return pd.DataFrame(
        {
            "num_hyperplanes": [16, 8, 12],
            "flops_reduction": [10.0, 40.0, 25.0],
            "flops_reduction_std": [0.1, 0.3, 0.2],
            "accuracy_drop": [0.5, 9.0, 1.2],
            "accuracy_std": [0.05, 0.9, 0.1],
        }
    )


def test_draw_sweep_curve_in_order_of_l_with_operating_point_ringed():
    fig, ax = plt.subplots()
    draw_sweep(ax, _summary(), color="C0", label="m (L=12)", operating_hyperplanes=12)
    line = ax.lines[0]
    np.testing.assert_array_equal(line.get_xdata(), [40.0, 25.0, 10.0])
    np.testing.assert_array_equal(line.get_ydata(), [9.0, 1.2, 0.5])
    assert ax.get_legend_handles_labels()[1] == ["m (L=12)"]
    ring = ax.collections[-1]
    np.testing.assert_array_equal(ring.get_offsets(), [[25.0, 1.2]])
    assert [text.get_text() for text in ax.texts] == ["L=8", "L=16"]  # the ends; L=12 is in the legend
    plt.close(fig)


def test_draw_sweep_labels_every_point_but_the_ringed_one():
    fig, ax = plt.subplots()
    draw_sweep(ax, _summary(), operating_hyperplanes=16, label_every_point=True)
    assert [text.get_text() for text in ax.texts] == ["L=8", "L=12"]
    np.testing.assert_array_equal(ax.collections[-1].get_offsets(), [[10.0, 0.5]])
    plt.close(fig)


def test_draw_sweep_without_operating_point_rings_nothing():
    fig, ax = plt.subplots()
    draw_sweep(ax, _summary(), x="flops_reduction")
    assert len(ax.collections[-1].get_offsets()) == 0
    assert [text.get_text() for text in ax.texts] == ["L=8", "L=16"]
    plt.close(fig)


def test_draw_sweep_returns_its_labels_for_placing():
    fig, ax = plt.subplots()
    labels = draw_sweep(ax, _summary(), operating_hyperplanes=12)
    assert [label.get_text() for label in labels] == ["L=8", "L=16"]
    assert all(label.get_fontsize() >= plotting.SMALLEST_FONT for label in labels)
    plt.close(fig)


def test_place_labels_moves_a_label_off_a_line_through_its_first_place():
    fig = plotting.new_figure(4, 3)
    ax = fig.subplots()
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    ax.plot([5, 8], [5, 2], color="C1")  # runs down to the right of the point, where labels go first
    label = ax.annotate("L=99", (5, 5), xytext=(4, -4), textcoords="offset points", ha="left", va="top")
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    line = ax.lines[0]
    path = line.get_transform().transform_path(line.get_path())
    assert path.intersects_bbox(label.get_window_extent(renderer), filled=False)  # the fixture bites
    plotting.place_labels([label])
    assert not path.intersects_bbox(label.get_window_extent(renderer), filled=False)
    assert ax.get_window_extent(renderer).contains(*label.get_window_extent(renderer).corners()[0])


def test_drop_axis_ticks_below_one_pp_in_plain_numbers():
    fig = plotting.new_figure(4, 3)
    ax = fig.subplots()
    ax.plot([0, 1], [0.1, 30])
    plotting.drop_axis(ax)
    fig.draw_without_rendering()
    shown = [tick.get_text() for tick in ax.get_yticklabels()]
    assert shown[:5] == ["0", "0.5", "1", "1.5", "2"] and "10" in shown and "20" in shown


def test_figure_style_is_the_same_whatever_the_users_rcparams(monkeypatch):
    monkeypatch.setitem(matplotlib.rcParams, "font.size", 20.0)
    monkeypatch.setitem(matplotlib.rcParams, "lines.linewidth", 5.0)
    with plotting.figure_style():
        assert matplotlib.rcParams["font.size"] == 9
        assert matplotlib.rcParams["lines.linewidth"] == plotting.STYLE["lines.linewidth"]
    assert matplotlib.rcParams["font.size"] == 20.0  # restored


def test_save_figure_writes_no_date_or_version_and_the_same_bytes_twice(tmp_path):
    fig = plotting.new_figure(2, 2)
    fig.subplots().plot([0, 1], [1, 0])
    first = plotting.save_figure(fig, tmp_path / "a", "f")
    second = plotting.save_figure(fig, tmp_path / "b", "f")
    assert [path.name for path in first] == ["f.png", "f.pdf"]
    for one, other in zip(first, second):
        assert one.read_bytes() == other.read_bytes()
    png, pdf = (path.read_bytes() for path in first)
    assert b"Software" not in png and b"matplotlib" not in png.lower()
    assert b"/CreationDate" not in pdf and b"/Producer" not in pdf and b"/Creator" not in pdf
