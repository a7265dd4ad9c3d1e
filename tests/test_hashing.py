import pytest
import torch

from haste.hashing import bucket_ids, codes_from_projections, draw_hyperplanes, merge_channels


def test_hyperplanes_are_ternary_with_the_requested_sparsity():
    planes = draw_hyperplanes(10_000, 4, sparsity=2 / 3, seed=1)
    assert planes.shape == (10_000, 4)
    assert set(planes.unique().tolist()) == {-1.0, 0.0, 1.0}
    zeros = (planes == 0).float().mean().item()
    assert abs(zeros - 2 / 3) < 0.01
    assert abs((planes == 1).float().mean().item() - 1 / 6) < 0.01


def test_hyperplanes_reproducible_and_nested_in_l():
    assert torch.equal(draw_hyperplanes(25, 8, seed=3), draw_hyperplanes(25, 8, seed=3))
    assert not torch.equal(draw_hyperplanes(25, 8, seed=3), draw_hyperplanes(25, 8, seed=4))
    assert torch.equal(draw_hyperplanes(25, 14, seed=3)[:, :8], draw_hyperplanes(25, 8, seed=3))


def test_gaussian_projection_is_dense():
    planes = draw_hyperplanes(100, 3, projection="gaussian")
    assert (planes != 0).all()


@pytest.mark.parametrize(
    "bad", [dict(num_hyperplanes=0), dict(num_hyperplanes=54), dict(sparsity=1.0), dict(projection="binary")]
)
def test_bad_hyperplane_arguments_are_refused(bad):
    args = dict(window_pixels=9, num_hyperplanes=4, sparsity=0.5, seed=0, projection="ternary") | bad
    with pytest.raises(ValueError):
        draw_hyperplanes(**args)


def test_codes_use_strictly_positive_bits():
    projections = torch.tensor([[1.0, 0.0, -2.0, 3.0]])
    assert codes_from_projections(projections).item() == 1 + 8
    many = torch.ones(1, 53)
    assert codes_from_projections(many).item() == 2**53 - 1  # exact at the largest L


def test_bucket_ids_group_equal_codes():
    codes = torch.tensor([[5, 3, 5, 9, 3], [1, 1, 1, 1, 1]])
    ids, counts = bucket_ids(codes)
    assert counts.tolist() == [3, 1]
    for row, code_row in zip(ids, codes):
        for a in range(5):
            for b in range(5):
                assert (row[a] == row[b]) == (code_row[a] == code_row[b])
    assert ids.max(1).values.add(1).tolist() == counts.tolist()


def test_merge_channels_replaces_channels_by_bucket_means():
    windows = torch.arange(12.0).view(1, 4, 3)  # 4 pixels, 3 channels
    merged = merge_channels(windows, torch.tensor([[0, 1, 0]]))
    assert torch.equal(merged[0, :, 0], (windows[0, :, 0] + windows[0, :, 2]) / 2)
    assert torch.equal(merged[0, :, 2], merged[0, :, 0])
    assert torch.equal(merged[0, :, 1], windows[0, :, 1])
