"""Tests written against the mutants that survived mutation testing (scripts/mutation.py).

One class per mutated module, each named in scripts/mutation.toml as part of that module's test
selection. Every expected value is a hand count or an independent restatement of the documented
rule (a scalar loop), never the output of the code under test. docs/mutation.md lists the survivors
that are left, and the equivalent mutants with the reason each cannot be killed.
"""

import warnings

import pytest
import torch
from torch import nn

import haste
from haste import HasteConv2d, HasteSettings
from haste.hashing import (
    bucket_ids,
    bucket_means,
    codes_from_projections,
    draw_hyperplanes,
    isolate_channels,
    merge_channels,
)
from haste.settings import check_num_hyperplanes, check_patch_size, check_seed, check_skip, check_sparsity


def drawn_by_hand(window_pixels, num_hyperplanes, sparsity, seed, projection="ternary"):
    """The documented draw, one scalar at a time: the columns one after another from one generator
    seeded with ``seed``; a uniform u below h = (1 - sparsity) / 2 gives +1, one in [h, 2h) gives -1,
    the rest 0. Gaussian columns are the generator's N(0, 1) draws as they come."""
    generator = torch.Generator().manual_seed(seed)
    h = (1 - sparsity) / 2
    columns = []
    for _ in range(num_hyperplanes):
        if projection == "gaussian":
            columns.append(torch.randn(window_pixels, generator=generator).tolist())
            continue
        uniforms = torch.rand(window_pixels, generator=generator).tolist()
        columns.append([1.0 if u < h else -1.0 if u < 2 * h else 0.0 for u in uniforms])
    return torch.tensor(columns, dtype=torch.float32).T


# seeds whose first uniform draws hit a boundary of sparsity 0.5 exactly (h = 0.25, 2h = 0.5):
# (window pixels, seed, index of the draw, its value); found by a search over seeds
BOUNDARY_DRAWS = [(2048, 17372, 104, 0.25), (2048, 479, 1395, 0.5)]


class TestHashing:
    def test_the_defaults_are_the_papers_sparsity_seed_and_projection(self):
        assert torch.equal(draw_hyperplanes(30, 5), drawn_by_hand(30, 5, 2 / 3, 0))

    @pytest.mark.parametrize(
        "window_pixels,num_hyperplanes,sparsity,seed", [(9, 4, 0.5, 3), (25, 6, 2 / 3, 1)]
    )
    def test_every_entry_follows_the_documented_draw(self, window_pixels, num_hyperplanes, sparsity, seed):
        planes = draw_hyperplanes(window_pixels, num_hyperplanes, sparsity=sparsity, seed=seed)
        assert planes.shape == (window_pixels, num_hyperplanes) and planes.dtype == torch.float32
        assert torch.equal(planes, drawn_by_hand(window_pixels, num_hyperplanes, sparsity, seed))

    @pytest.mark.parametrize("window_pixels,seed,index,value", BOUNDARY_DRAWS)
    def test_a_draw_on_a_boundary_takes_the_side_the_rule_gives(self, window_pixels, seed, index, value):
        # u == h gives -1 (not +1), u == 2h gives 0 (not -1): a "<=" for a "<" changes the planes
        uniforms = torch.rand(window_pixels, generator=torch.Generator().manual_seed(seed))
        assert uniforms[index].item() == value  # the draw does hit the boundary
        planes = draw_hyperplanes(window_pixels, 1, sparsity=0.5, seed=seed)
        assert planes[index, 0].item() == (-1.0 if value == 0.25 else 0.0)
        assert torch.equal(planes, drawn_by_hand(window_pixels, 1, 0.5, seed))

    def test_gaussian_planes_are_every_column_of_normal_draws(self):
        planes = draw_hyperplanes(20, 3, seed=2, projection="gaussian")
        assert planes.shape == (20, 3)
        assert torch.equal(planes, drawn_by_hand(20, 3, 2 / 3, 2, projection="gaussian"))

    @pytest.mark.parametrize(
        "num_hyperplanes,dtype", [(1, torch.float32), (24, torch.float32), (25, torch.float64)]
    )
    def test_codes_are_float32_up_to_24_bits_and_float64_above(self, num_hyperplanes, dtype):
        codes = codes_from_projections(torch.ones(2, num_hyperplanes))
        assert codes.dtype == dtype
        assert codes.tolist() == [2.0**num_hyperplanes - 1] * 2

    def test_codes_of_projections_with_leading_dimensions(self):
        # [images, tiles, channels, L]: the bits are the last dimension's, whatever comes before it
        projections = torch.tensor([[1.0, -1.0, 2.0], [0.0, 3.0, 0.0], [-1.0, -2.0, 5.0], [4.0, 4.0, 4.0]])
        codes = codes_from_projections(projections.view(1, 2, 2, 3))
        assert codes.shape == (1, 2, 2)
        assert codes.flatten().tolist() == [1 + 4, 2, 4, 1 + 2 + 4]

    def test_isolated_channels_get_minus_one_minus_their_index(self):
        # channels 0 and 1 hold a non-finite value: codes -1 and -2, which no hash code (>= 0) equals
        codes = torch.tensor([[[0.0, 1.0, 2.0, 0.0], [3.0, 3.0, 3.0, 3.0]]])  # [images, tiles, channels]
        finite = torch.tensor([[[False, False, True, True], [True, False, True, False]]])
        isolated = isolate_channels(codes, finite)
        assert isolated.tolist() == [[[-1.0, -2.0, 2.0, 0.0], [3.0, -2.0, 3.0, -4.0]]]
        ids, counts = bucket_ids(isolated.view(2, 4))
        assert counts.tolist() == [4, 3]  # tile 0: nothing merged; tile 1: channels 0 and 2 only

    def test_bucket_ids_are_numbered_in_increasing_code_order(self):
        codes = torch.tensor(
            [[5.0, 3.0, 5.0, 9.0, 3.0], [1.0, 1.0, 1.0, 1.0, 1.0], [7.0, -1.0, 2.0, -1.0, -5.0]]
        )
        ids, counts = bucket_ids(codes)
        assert ids.tolist() == [[1, 0, 1, 2, 0], [0, 0, 0, 0, 0], [3, 1, 2, 1, 0]]
        assert counts.tolist() == [3, 1, 4]

    # two rows of 2 pixels x 3 channels; row 0 merges channels 0 and 2, row 1 channels 0 and 2 too
    # but into bucket 1 (channel 1 is bucket 0)
    WINDOWS = torch.tensor([[[1.0, 7.0, 3.0], [4.0, 5.0, 8.0]], [[2.0, 4.0, 9.0], [0.0, 3.0, 3.0]]])
    IDS = torch.tensor([[0, 1, 0], [1, 0, 1]])

    def test_bucket_means_by_hand_with_zeros_in_unused_columns(self):
        means = bucket_means(self.WINDOWS.double(), self.IDS)
        expected = [[[2.0, 7.0, 0.0], [6.0, 5.0, 0.0]], [[4.0, 5.5, 0.0], [3.0, 1.5, 0.0]]]
        assert means.tolist() == expected

    def test_merge_channels_by_hand_over_two_rows(self):
        merged = merge_channels(self.WINDOWS.double(), self.IDS)
        expected = [[[2.0, 7.0, 2.0], [6.0, 5.0, 6.0]], [[5.5, 4.0, 5.5], [1.5, 3.0, 1.5]]]
        assert merged.tolist() == expected


class TestSettings:
    def test_the_defaults_are_the_papers(self):
        settings = HasteSettings()
        assert (settings.sparsity, settings.patch_size, settings.projection) == (2 / 3, 3, "ternary")
        assert (settings.centre, settings.grouping, settings.skip) == (True, "lsh", 1)
        assert settings.include_pointwise is False

    @pytest.mark.parametrize(
        "check,value",
        [
            (check_num_hyperplanes, 1),
            (check_num_hyperplanes, 53),  # the largest L whose codes are exact in float64
            (check_patch_size, 1),
            (check_sparsity, 0.0),
            (check_seed, 0),
            (check_skip, 0),
        ],
    )
    def test_the_ends_of_every_range_are_accepted(self, check, value):
        assert check(value) == value

    @pytest.mark.parametrize(
        "name,value,message",
        [
            ("sparsity", -0.01, "sparsity must be a number in [0, 1), not -0.01"),
            ("skip", 2.5, "skip must be an integer >= 0 or layer names, not 2.5"),
            ("skip", True, "skip must be an integer >= 0 or layer names, not True"),
        ],
    )
    def test_values_just_outside_are_refused_with_the_settings_message(self, name, value, message):
        with pytest.raises(ValueError) as error:
            HasteSettings(**{name: value})
        assert str(error.value) == message

    def test_the_old_execution_name_warns_at_the_callers_line(self):
        model = nn.Sequential(HasteConv2d.from_conv(nn.Conv2d(3, 4, 3), 6))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            haste.set_execution(model, "eval")
        assert [warning.category for warning in caught] == [DeprecationWarning]
        assert caught[0].filename == __file__  # this line, not a line inside haste or below it
