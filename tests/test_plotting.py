import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

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
