"""Tests written against the mutants that survived mutation testing (scripts/mutation.py).

One class per mutated module, each named in scripts/mutation.toml as part of that module's test
selection. Every expected value is a hand count or an independent restatement of the documented
rule (a scalar loop), never the output of the code under test. docs/mutation.md lists the survivors
that are left, and the equivalent mutants with the reason each cannot be killed.
"""

import warnings

import pandas as pd
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


class TestSeedsAndGroupings:  # haste/settings.py, beside TestSettings
    def test_the_last_layer_may_draw_from_the_largest_seed_and_no_further(self):
        from haste.settings import check_model_seed

        # 2**64 - 1 = 1,844,674,407,370,955 * 10,000 + 1,615: with 1,616 layers the last draws from it
        seed = (2**64 - 1616) // 10_000
        assert seed * 10_000 + 1615 == 2**64 - 1
        assert check_model_seed(seed, 1616) == seed
        for layers in (1617, 1618):
            with pytest.raises(ValueError, match=f"seed {seed}: too large"):
                check_model_seed(seed, layers)

    def test_a_grouping_is_a_built_in_name_or_an_object_that_groups(self):
        from haste.grouping import BUILT_IN
        from haste.settings import check_grouping

        scheme = BUILT_IN["random"]
        assert check_grouping("lsh") == "lsh" and check_grouping(scheme) is scheme
        for value in (5, "nosuch", type("NotAScheme", (), {"group": 3})()):
            with pytest.raises(ValueError, match="grouping must be"):
                check_grouping(value)

    def test_convert_without_l_takes_the_documented_default_of_14(self):
        model = haste.convert(nn.Sequential(nn.Conv2d(3, 4, 3)), skip=0)
        assert model[0].num_hyperplanes == 14


class TestCost:
    def test_bucket_sums_wait_on_the_device_until_the_stats_are_read(self):
        """``record`` adds each call's bucket sums on the counts' device and folds them into the host
        counters only when the stats are read: folding at every call is a host sync per layer and
        forward on a GPU."""
        from haste.cost import CostRecorder
        from haste.tiling import Tiling

        tiling = Tiling((6, 6), (3, 3), (1, 1), (0, 0), 3)  # 4x4 outputs in 2x2 tiles of a 5x5 window
        hyperplanes = torch.ones(25, 4)
        recorder = CostRecorder(4, 4, 9)
        for _ in range(2):
            recorder.record(tiling, hyperplanes, torch.full((1, 4), 2), keep_patches=False)
        assert recorder._stats.buckets == 0 and recorder._pending_sums is not None  # nothing read yet
        stats = recorder.stats
        assert stats.buckets == 2 * 4 * 2  # two calls, four tiles, m = 2
        assert stats.buckets_times_outputs == 2 * 2 * (9 + 3 + 3 + 1)  # m x each tile's valid outputs


def _one_conv(in_channels=4, out_channels=3):
    return haste.convert(nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, bias=False)), 4, skip=0)


class TestReport:
    def test_per_layer_terms_are_the_layers_sums_per_image_and_the_totals_their_sums(self):
        from haste.cost import OVERHEAD_TERMS, TERMS
        from haste.report import flop_report

        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Conv2d(3, 6, 3, bias=False), nn.ReLU(), nn.Conv2d(6, 4, 3, bias=False), nn.Flatten()
        )
        model = haste.convert(model, 3, skip=0)
        model(torch.randn(7, 3, 8, 8))  # seven images: the data's sums are not multiples of 7
        report = flop_report(model, (3, 8, 8))
        layers = report.layers.set_index("layer")
        fractional = 0
        for name in ("0", "2"):
            stats, row = model.get_submodule(name).stats, layers.loc[name]
            for term in TERMS:
                assert row[f"flops_{term}"] == getattr(stats, term) / 7, (name, term)
                fractional += getattr(stats, term) % 7 != 0
            overhead = sum(getattr(stats, term) for term in OVERHEAD_TERMS) / 7
            assert row.flops_overhead == overhead and row.flops_haste == stats.conv / 7 + overhead
            assert row.flops_reduction == 100 * (1 - row.flops_haste / row.flops_dense)
            assert row.conv_fraction_kept == stats.conv / stats.dense
        assert fractional > 0  # a floor division would show
        dense = report.model_dense
        assert report.model_haste == dense - layers.flops_dense.sum() + layers.flops_haste.sum()
        assert report.reduction == 100 * (1 - report.model_haste / dense)  # properties, not methods
        spent = report.model_haste - report.model_overhead
        assert report.reduction_no_overhead == pytest.approx(100 * (1 - spent / dense), rel=1e-12)
        filter_merge = layers.flops_filter_merge.sum()
        assert report.totals()["flops_filter_merge"] == filter_merge == report.overhead_terms["filter_merge"]

    def test_a_report_without_haste_layers_counts_the_model_dense(self):
        from haste.report import dense_flops, flop_report

        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 36, 2))
        report = flop_report(model, (3, 8, 8))
        counted = dense_flops(model, (3, 8, 8))
        assert (report.model_dense, report.model_haste, report.model_overhead) == (counted[""],) * 2 + (0,)
        assert report.totals()["flops_filter_merge"] == 0.0 and report.reduction == 0.0

    def test_exceeds_dense_by_hand_at_both_sides_and_at_equality(self):
        from haste.report import flop_report

        lone = _one_conv(in_channels=1)  # one channel: nothing to merge, overhead on top
        lone(torch.randn(1, 1, 6, 6))
        assert flop_report(lone, (1, 6, 6)).layers.exceeds_dense.tolist() == [True]
        twins = _one_conv(in_channels=8, out_channels=16)  # eight equal channels: one bucket per patch
        twins(torch.randn(1, 1, 8, 8).expand(1, 8, 8, 8).contiguous())
        assert flop_report(twins, (8, 8, 8)).layers.exceeds_dense.tolist() == [False]
        unseen = _one_conv()  # saw no image: counted as dense, exactly its cost
        row = flop_report(unseen, (4, 6, 6)).layers.iloc[0]
        assert row.flops_haste == row.flops_dense and not row.exceeds_dense

    def test_a_layer_that_saw_no_image_is_dense_with_no_overhead(self):
        from haste.cost import OVERHEAD_TERMS
        from haste.report import dense_flops, flop_report

        model = _one_conv()
        row = flop_report(model, (4, 6, 6)).layers.iloc[0]
        dense = dense_flops(model, (4, 6, 6))["0"]
        assert row.images == 0 and row.flops_dense == dense == 3 * 4 * 9 * 16
        assert row.flops_conv == dense and row.conv_fraction_kept == 1.0 and row.flops_reduction == 0.0
        assert all(row[f"flops_{term}"] == 0.0 for term in OVERHEAD_TERMS) and row.flops_overhead == 0.0

    def test_a_layer_the_forward_never_reaches_has_no_reduction_and_no_division_by_zero(self):
        from haste.report import flop_report

        class Branch(nn.Module):
            def __init__(self):
                super().__init__()
                self.used, self.unused = nn.Conv2d(4, 4, 3), nn.Conv2d(4, 4, 3)

            def forward(self, x):
                return self.used(x)

        model = haste.convert(Branch(), 4, skip=0)
        model(torch.randn(1, 4, 6, 6))
        row = flop_report(model, (4, 6, 6)).layers.set_index("layer").loc["unused"]
        assert row.flops_dense == 0.0 and row.flops_reduction == 0.0
        assert row.flops_reduction_no_overhead == 0.0

    def test_a_changed_input_shape_is_refused_with_the_per_image_counts(self):
        from haste.report import flop_report

        model = _one_conv()
        model(torch.randn(2, 4, 6, 6))
        with pytest.raises(RuntimeError, match=r"counted 1728\.0 dense FLOPs per image, fvcore 2700\.0"):
            flop_report(model, (4, 7, 7))  # 3 x 4 x 9 = 108 per output: 16 outputs at 6x6, 25 at 7x7

    def test_the_dense_count_is_traced_once_per_architecture_and_never_shared(self):
        from haste.report import cached_dense_flops, dense_flops

        small, wide = nn.Sequential(nn.Conv2d(3, 4, 3)), nn.Sequential(nn.Conv2d(3, 8, 3))
        assert cached_dense_flops(small, (3, 6, 6)) == dense_flops(small, (3, 6, 6))
        assert cached_dense_flops(wide, (3, 6, 6)) == dense_flops(wide, (3, 6, 6))
        assert cached_dense_flops(small, (3, 6, 6))[""] != cached_dense_flops(wide, (3, 6, 6))[""]

    def test_fvcore_says_nothing_of_unsupported_operators_or_modules_never_called(self, caplog):
        import logging

        from haste.report import dense_flops

        class Noisy(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv, self.unused = nn.Conv2d(2, 2, 3), nn.Conv2d(2, 2, 3)

            def forward(self, x):
                return torch.nn.functional.gelu(self.conv(x)).cumsum(1)  # operators fvcore skips

        with caplog.at_level(logging.DEBUG):
            dense_flops(Noisy(), (2, 5, 5))
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []

    def test_the_printed_table_by_hand(self):
        from haste.report import LayerTable

        def table(dense, exceeds):
            row = lambda name, d, x: {
                "layer": name,
                "num_hyperplanes": 4,
                "flops_dense": d,
                "flops_conv": d / 2,
                "flops_centre": d / 8,
                "flops_hash": d / 8,
                "flops_input_merge": d / 8,
                "flops_filter_merge": d / 8 + (d if x else 0),
                "flops_haste": d,
                "flops_reduction": 12.5,
                "exceeds_dense": x,
            }
            return LayerTable([row("a", dense, exceeds), row("b", dense / 4, False)])

        lines = repr(table(1e9, True)).splitlines()
        assert lines[0] == "GFLOPs per image, by layer:"
        assert [line.split() for line in lines[1:4]] == [
            [*"layer L dense conv centre hash".split(), "input", "merge", "filter", "merge", "HASTE"]
            + ["reduction", "(%)", "note"],
            [*"a 4 1.00 0.50 0.12 0.12 0.12 1.12 1.00 12.50".split(), *"costs more than dense".split()],
            "b 4 0.25 0.12 0.03 0.03 0.03 0.03 0.25 12.50".split(),
        ]
        assert lines[4] == (
            "note: 1 of 2 HASTE layers cost more than dense (a negative reduction): their hashing and "
            "merging outweigh what merging saves; haste.convert's skip can leave them dense"
        )
        for largest, unit in ((1e6, "M"), (1e3, "k"), (1.0, "")):  # each unit from exactly its size
            lines = repr(table(largest, False)).splitlines()
            assert lines[0] == f"{unit}FLOPs per image, by layer:" and len(lines) == 4  # no note line
            assert lines[2].split() == "a 4 1.00 0.50 0.12 0.12 0.12 0.12 1.00 12.50".split()
        lines = repr(table(0.0, False)).splitlines()  # layers never run count 0
        assert lines[0] == "FLOPs per image, by layer:" and lines[2].split()[2:4] == ["0.00", "0.00"]
        for missing in ("exceeds_dense", "flops_centre"):  # a table without its columns prints as a frame
            partial = LayerTable(table(1e6, False).drop(columns=missing))
            assert repr(partial) == pd.DataFrame.__repr__(partial)


class _Fixed(nn.Module):
    """Logits that pick class 0 for every image, through one HASTE-able conv; records whether it ran
    in inference mode."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3)
        self.inference = []

    def forward(self, x):
        self.inference.append(torch.is_inference_mode_enabled())
        logits = self.conv(x).mean((2, 3))
        return torch.stack([logits[:, 0].abs() + 1e3, logits[:, 1]], 1)


class TestEvaluate:
    def test_accuracy_by_hand_runs_in_inference_mode_and_keeps_no_patches_by_default(self):
        model = haste.convert(_Fixed(), 4, skip=0)
        batches = [
            (torch.randn(2, 3, 6, 6), torch.tensor([0, 1])),
            (torch.randn(1, 3, 6, 6), torch.tensor([1])),
        ]
        result = haste.evaluate(model, batches, progress=False)
        assert result.accuracy == 100 / 3 and result.images == 3  # one of three images is class 0
        assert model.inference[:2] == [True, True] and model.conv.stats.kept_fraction == []  # then fvcore's
        assert "correct=" not in repr(result) and result.correct.tolist() == [True, False, False]

    def test_the_progress_bar_by_default_with_its_total_and_none_when_asked(self, capsys):
        model = haste.convert(_Fixed(), 4, skip=0)
        batches = [(torch.randn(1, 3, 6, 6), torch.tensor([0]))] * 2
        haste.evaluate(model, batches, description="counting")
        err = capsys.readouterr().err
        assert "counting: 100%" in err and "2/2" in err  # a sized iterable: its total
        haste.evaluate(model, iter(batches), description="counting")
        assert "2it" in capsys.readouterr().err  # no total without a length
        haste.evaluate(model, batches, progress=False)
        assert capsys.readouterr().err == ""

    def test_no_batches_and_a_changed_image_shape_are_refused_with_their_shapes(self):
        model = haste.convert(_Fixed(), 4, skip=0)
        with pytest.raises(ValueError, match="no images to evaluate"):
            haste.evaluate(model, [], progress=False)
        batches = [(torch.randn(1, 3, 6, 6), torch.tensor([0])), (torch.randn(1, 3, 7, 7), torch.tensor([0]))]
        with pytest.raises(ValueError, match=r"changed from \(3, 6, 6\) to \(3, 7, 7\)"):
            haste.evaluate(model, batches, progress=False)


def _rebuilt_state():
    return {"conv.weight": torch.zeros(1)}


class _ByCode:
    """Pickles as a call of a function of this module: a state dict only code can make."""

    def __reduce__(self):
        return (_rebuilt_state, ())


class TestWeights:
    def test_the_shipped_folder_is_the_checkouts_else_the_cache(self, tmp_path, monkeypatch):
        from pathlib import Path

        from haste.zoo import weights

        monkeypatch.delenv("HASTE_WEIGHTS", raising=False)
        assert weights.shipped_weights_dir() == Path(__file__).resolve().parents[1] / "weights"
        monkeypatch.setattr(weights, "__file__", str(tmp_path / "site" / "haste" / "zoo" / "weights.py"))
        monkeypatch.setenv("HASTE_CACHE", str(tmp_path / "cache"))  # installed without the repository
        assert weights.shipped_weights_dir() == tmp_path / "cache" / "weights"

    def test_a_pickle_that_runs_code_is_refused_though_it_makes_tensors(self, tmp_path):
        from haste.zoo.weights import ChecksumError, load_state_dict

        torch.save(_ByCode(), tmp_path / "code.pt")
        with pytest.raises(ChecksumError, match="cannot be read as a state dict"):
            load_state_dict(tmp_path / "code.pt")

    def test_a_training_checkpoint_gives_its_state_dict(self, tmp_path):
        from haste.zoo.weights import load_state_dict

        torch.save({"state_dict": {"conv.weight": torch.ones(2)}, "epoch": 3}, tmp_path / "run.pt")
        assert list(load_state_dict(tmp_path / "run.pt")) == ["conv.weight"]

    def test_a_value_that_is_not_a_tensor_is_named_with_its_article(self, tmp_path):
        from haste.zoo.weights import ChecksumError, load_state_dict

        for value, kind in ((0.5, "a float"), (3, "an int")):
            torch.save({"conv.weight": torch.ones(1), "scale": value}, tmp_path / "mixed.pt")
            with pytest.raises(ChecksumError, match=f"'scale' holds {kind}, not a tensor"):
                load_state_dict(tmp_path / "mixed.pt")

    def test_what_a_model_was_loaded_with_cannot_be_changed_afterwards(self):
        import dataclasses

        from haste.zoo.weights import WeightsInfo

        info = WeightsInfo("cifar10/resnet18", "w.pt", "ab" * 32, "stand-in")
        with pytest.raises(dataclasses.FrozenInstanceError):
            info.sha256 = "cd" * 32  # type: ignore[misc]


def _two_convs():
    return nn.Sequential(nn.Conv2d(3, 4, 3, stride=(2, 1)), nn.ReLU(), nn.Conv2d(4, 4, 1))


class TestConvert:
    def test_revert_copies_unless_in_place_and_forgets_the_skip_reasons(self):
        fast = haste.convert(_two_convs(), 4, skip=0)
        dense = haste.revert(fast)
        assert type(dense[0]) is nn.Conv2d and isinstance(fast[0], HasteConv2d)  # a copy by default
        assert not hasattr(dense, "_haste_skipped") and hasattr(fast, "_haste_skipped")
        assert haste.revert(fast, inplace=True) is fast and type(fast[0]) is nn.Conv2d
        layer = HasteConv2d.from_conv(nn.Conv2d(3, 4, 3), 4)
        assert type(haste.revert(layer)) is nn.Conv2d and isinstance(layer, HasteConv2d)
        assert haste.revert(layer, inplace=True).weight is layer.weight  # the layer's own weight

    def test_the_summary_by_hand(self):
        model = haste.convert(_two_convs(), 4, skip=0)
        lines = repr(haste.summary(model)).splitlines()
        assert [line.split() for line in lines] == [
            "layer in out kernel stride haste L reason".split(),
            "0 3 4 3x3 2 True 4".split(),
            "2 4 4 1x1 1 False 1x1 (pointwise)".split(),
        ]
        empty = haste.summary(nn.Sequential(nn.ReLU()))
        assert repr(empty) == pd.DataFrame.__repr__(empty)

    def test_seed_is_keyword_only_and_0_by_default(self):
        model = nn.Sequential(nn.Conv2d(3, 4, 3))
        default, zero = haste.convert(model, 4, skip=0), haste.convert(model, 4, skip=0, seed=0)
        assert torch.equal(default[0].hyperplanes, zero[0].hyperplanes)
        assert not torch.equal(default[0].hyperplanes, haste.convert(model, 4, skip=0, seed=1)[0].hyperplanes)
        with pytest.raises(TypeError):
            haste.convert(model, 4, None, 0)  # the seed is never positional

    def test_the_skip_warning_names_the_first_conv(self):
        with pytest.warns(UserWarning, match=r"their names: '0', \.\.\."):
            haste.convert(_two_convs(), 4, skip=["nomatch"])

    def test_switches_reach_every_layer_and_are_restored(self):
        model = haste.convert(_two_convs(), 4, skip=0, include_pointwise=True)
        layers = [layer for _, layer in haste.haste_layers(model)]
        haste.set_execution(model, "compressed")
        assert [layer.execution for layer in layers] == ["compressed"] * 2
        layers[1].merge = False
        with haste.merging_disabled(model):
            assert [layer.merge for layer in layers] == [False, False]
        assert [layer.merge for layer in layers] == [True, False]  # each its own setting again
        model(torch.randn(1, 3, 8, 8))
        haste.reset_stats(model, record_patches=True)
        assert [(layer.stats.images, layer.record_patches) for layer in layers] == [(0, True)] * 2
        model(torch.randn(1, 3, 8, 8))
        haste.reset_stats(model)  # record_patches left as it was
        assert [(layer.stats.images, layer.record_patches) for layer in layers] == [(0, True)] * 2


class TestTiling:
    """haste/tiling.py: the geometry checks and the refusal messages, against hand-worked cases."""

    def test_an_input_one_pixel_short_of_the_kernel_is_refused(self):
        from haste.tiling import Tiling

        # (2 + 0 - 3) // 1 + 1 = 0 output pixels: nothing to tile
        with pytest.raises(ValueError, match="smaller than the kernel"):
            _ = Tiling((2, 2), (3, 3), (1, 1), (0, 0), 2).out_size

    @pytest.mark.parametrize("value", [(-1, 0), (0, -1), (1, 1, 1), (1,), ["a", "b"], 1.0])
    def test_a_padding_that_is_not_a_pair_of_ints_from_0_is_refused(self, value):
        from haste.tiling import conv_geometry

        with pytest.raises(ValueError, match=r"padding must be an int or a pair of ints >= 0"):
            conv_geometry((3, 3), 1, value)

    @pytest.mark.parametrize("value", [0, (0, 1), (1, 0)])
    def test_a_stride_of_0_is_refused(self, value):
        from haste.tiling import conv_geometry

        with pytest.raises(ValueError, match=r"stride must be >= 1"):
            conv_geometry((3, 3), value, 1)

    def test_a_stride_of_three_ints_is_refused(self):
        from haste.tiling import conv_geometry

        with pytest.raises(ValueError, match=r"stride must be an int or a pair of ints >= 0"):
            conv_geometry((3, 3), (1, 1, 1), 1)

    @pytest.mark.parametrize(
        "kernel, padding, expected",
        [
            ((3, 3), "valid", (0, 0)),
            ((5, 7), "valid", (0, 0)),
            ((5, 7), "same", (2, 3)),  # (k - 1) / 2 per axis, rows first
            ((1, 1), "same", (0, 0)),
            ((3, 5), "same", (1, 2)),
        ],
    )
    def test_named_paddings_by_hand(self, kernel, padding, expected):
        from haste.tiling import conv_geometry

        assert conv_geometry(kernel, 1, padding) == ((1, 1), expected)

    @pytest.mark.parametrize(
        "kernel, stride, padding",
        [((2, 2), 1, "same"), ((3, 4), 1, "same"), ((3, 3), 2, "same"), ((3, 3), 1, "full")],
    )
    def test_paddings_f_conv2d_would_make_asymmetric_or_does_not_name_are_refused(
        self, kernel, stride, padding
    ):
        from haste.tiling import conv_geometry

        with pytest.raises(ValueError, match="is not supported"):
            conv_geometry(kernel, stride, padding)

    def test_the_hyperplane_mismatch_names_both_counts(self):
        from haste.tiling import checked_tiling

        # kernel 3 x 3 at patch 2, stride 1: a (2 - 1) + 3 = 4 pixel square window, 16 pixels
        weight, hyperplanes = torch.zeros(2, 3, 3, 3), torch.zeros(9, 5)
        with pytest.raises(ValueError) as refused:
            checked_tiling(torch.zeros(1, 3, 8, 8), weight, 1, 1, hyperplanes, 2)
        assert str(refused.value) == "hyperplanes have 9 rows, windows 16 pixels"


class TestGrouping:
    """haste/grouping.py: the random control's groups by the documented rule, the shape check."""

    @pytest.mark.parametrize("seed", [0, 7, 2**64 - 1])
    def test_random_groups_are_ranks_modulo_the_bucket_count_by_hand(self, seed):
        from haste.grouping import LSH, RandomGroups

        torch.manual_seed(1)
        windows, hyperplanes = torch.randn(2, 3, 9, 8), torch.randn(9, 2)
        ids, counts = RandomGroups().group(windows, hyperplanes, True, seed)
        assert torch.equal(counts, LSH().group(windows, hyperplanes, True, seed)[1])
        # the ranks: one uniform per tile and channel from a generator seeded (seed + 1,000,003)
        # mod 2**64, a channel's rank the number of channels of its tile with a smaller draw
        draws = torch.rand(3, 8, generator=torch.Generator().manual_seed((seed + 1_000_003) % 2**64))
        for image in range(2):
            for tile in range(3):
                row = draws[tile].tolist()
                for channel in range(8):
                    rank = sum(value < row[channel] for value in row)
                    assert ids[image, tile, channel] == rank % int(counts[image, tile])

    @pytest.mark.parametrize("wrong", ["ids", "counts"])
    def test_a_scheme_with_one_answer_of_the_wrong_shape_is_refused(self, wrong):
        from haste.grouping import Grouping, grouped

        class Half(Grouping):
            def group(self, windows, hyperplanes, centre, seed):
                n, tiles, _, channels = windows.shape
                ids = torch.zeros(n, tiles, channels + (wrong == "ids"), dtype=torch.long)
                counts = torch.ones(n, tiles + (wrong == "counts"), dtype=torch.long)
                return ids, counts

        with pytest.raises(ValueError, match="returned ids"):
            grouped(Half(), torch.zeros(1, 2, 9, 4), torch.zeros(9, 3), True, 0)


class TestConventions:
    """haste/conventions.py: the table's fixed facts and the arithmetic of a convention by hand."""

    def test_the_headlines_are_the_full_count_and_the_count_without_overhead(self):
        from haste.conventions import HEADLINES

        assert HEADLINES == ("flops_reduction", "flops_reduction_no_overhead")

    def test_a_convention_is_immutable_and_hashable(self):
        import dataclasses

        from haste.conventions import CONVENTIONS

        with pytest.raises(dataclasses.FrozenInstanceError):
            CONVENTIONS[0].counted = ()
        assert len(set(CONVENTIONS)) == 6

    def test_terms_a_row_lacks_count_as_zero(self):
        from haste.conventions import BY_NAME, dense_and_spent

        # whole model, overhead without the filter merge: the filter merge (absent here: 0) is left out
        convention = BY_NAME["flops_reduction_no_filter_merge"]
        assert dense_and_spent(convention, 1000.0, 600.0, 100.0, 900.0, {}) == (1000.0, 600.0)
        assert dense_and_spent(convention, 1000.0, 600.0, 100.0, 900.0, None) == (1000.0, 600.0)
        # conv + linear, same: 100 FLOPs outside the convolutions and linear layers leave both sides
        convention = BY_NAME["flops_reduction_convlinear_no_filter_merge"]
        assert dense_and_spent(convention, 1000.0, 600.0, 100.0, 900.0, {"filter_merge": 30.0}) == (
            900.0,
            470.0,
        )


class TestModule:
    """haste/module.py: defaults, geometry of rectangular layers, checkpoints without hyperplanes, the
    cache of the cost constants and the host-side bookkeeping under torch.compile."""

    def test_the_default_seed_is_0_and_no_patch_is_kept(self):
        conv = nn.Conv2d(4, 3, 3, padding=1)
        for layer in (HasteConv2d(4, 3, 3, padding=1), HasteConv2d.from_conv(conv)):
            # a 3 x 3 kernel at patch 3, stride 1: a 5 x 5 window
            expected = drawn_by_hand(25, layer.num_hyperplanes, layer.sparsity, 0)
            assert torch.equal(layer.hyperplanes, expected)
            assert layer.record_patches is False
            with torch.no_grad():
                layer(torch.randn(1, 4, 6, 6))
            assert layer.stats.kept_fraction == []

    def test_steering_a_rectangular_layer_redraws_hyperplanes_of_its_window(self):
        # kernel 1 x 3, stride (1, 2), patch 3: windows (3 - 1) * 1 + 1 = 3 rows, (3 - 1) * 2 + 3 = 7 columns
        layer = HasteConv2d(4, 3, (1, 3), stride=(1, 2), seed=5)
        layer.configure(num_hyperplanes=6)
        assert torch.equal(layer.hyperplanes, drawn_by_hand(21, 6, layer.sparsity, 5))

    def test_same_padding_of_a_rectangular_kernel_by_hand(self):
        assert HasteConv2d(4, 3, (3, 5), padding="same").padding == (1, 2)
        assert HasteConv2d(4, 3, (5, 3), padding="same").padding == (2, 1)
        with pytest.raises(ValueError, match="not supported"):
            HasteConv2d(4, 3, (2, 3), padding="same")
        with pytest.raises(ValueError, match="not supported"):
            HasteConv2d(4, 3, (3, 2), padding="same")

    def test_a_checkpoint_without_hyperplanes_loads_non_strictly(self):
        conv = nn.Conv2d(4, 3, 3, padding=1)
        layer = HasteConv2d(4, 3, 3, padding=1)
        before = layer.hyperplanes.clone()
        missing, unexpected = layer.load_state_dict(conv.state_dict(), strict=False)
        assert (missing, unexpected) == (["hyperplanes"], [])
        assert torch.equal(layer.hyperplanes, before) and torch.equal(layer.weight, conv.weight)

    def test_hyperplanes_of_another_window_name_both_sizes(self):
        layer = HasteConv2d(4, 3, 3, padding=1, num_hyperplanes=8)  # 5 x 5 windows at patch 3
        state = layer.state_dict()
        state["hyperplanes"] = torch.zeros(16, 8)
        with pytest.raises(ValueError) as refused:
            layer.load_state_dict(state)
        expected = "hyperplanes: (16, 8) does not fit windows of 25 pixels (another patch size?)"
        assert str(refused.value) == expected

    def test_the_cost_constants_are_made_again_exactly_when_the_hyperplanes_change(self):
        layer = HasteConv2d(4, 3, 3, padding=1)
        assert layer._hyperplanes_changed() is True  # never seen
        assert layer._hyperplanes_changed() is False  # the same tensor, version and bits
        layer.hyperplanes.mul_(1)  # in place: a new version, the same bits
        assert layer._hyperplanes_changed() is True
        assert layer._hyperplanes_changed() is False
        layer.hyperplanes.data[0, 0] = 1 - layer.hyperplanes.data[0, 0]  # through .data: no new version
        assert layer._hyperplanes_changed() is True
        assert layer._hyperplanes_changed() is False
        layer.hyperplanes = layer.hyperplanes.clone()  # another tensor
        assert layer._hyperplanes_changed() is True
        assert layer._hyperplanes_changed() is False

    def test_the_bookkeeping_does_not_recompile_a_compiled_layer_on_every_call(self):
        import logging

        layer = HasteConv2d(4, 3, 3, padding=1, grouping="random").eval()  # the torch path (no numba)
        graphs = []

        def backend(graph, inputs):
            graphs.append(graph)
            return graph.forward

        compiled = torch.compile(layer, backend=backend)
        counts = []
        logging.disable(logging.WARNING)  # dynamo's graph-break notes
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for _ in range(4):
                    compiled(torch.randn(1, 4, 8, 8))
                    counts.append(len(graphs))
        finally:
            logging.disable(logging.NOTSET)
            torch._dynamo.reset()
        assert counts[1] == counts[3], f"graphs compiled after each call: {counts}"


class TestTables:
    """haste/repro/tables.py: edge cases of the table builders, by hand."""

    def test_a_drop_equal_to_the_paper_s_is_within_it(self):
        from haste.conventions import CONVENTIONS
        from haste.repro import tables

        summary = pd.DataFrame(
            {
                "model": "cifar10/resnet34",  # the paper's drop: 1.25 pp
                "weights_sha256": "ab" * 32,
                "patch_size": 3,
                "num_hyperplanes": [8, 10, 12],
                "accuracy": [87.0, 88.75, 89.5],
                "accuracy_drop": [3.0, 1.25, 0.5],
                "accuracy_std": 0.1,
                "seeds": 3,
                "images": 10000,
            }
        )
        for convention in CONVENTIONS:
            summary[convention.name] = [40.0, 30.0, 20.0]
            summary[f"{convention.name}_std"] = 0.1
        table = tables.reconciliation_table(summary)
        assert table.num_hyperplanes.tolist() == [10] * len(CONVENTIONS)
        assert table.flops_reduction.tolist() == [30.0] * len(CONVENTIONS)

    def test_a_convention_read_back_as_nan_is_none(self):
        from haste.repro import tables

        results = pd.DataFrame(
            {
                "model": ["cifar10/resnet34"],
                "num_hyperplanes": [None],
                "accuracy": [88.8],
                "weights_sha256": ["ab" * 32],
                "images": [10000],
            }
        )
        summary = pd.DataFrame(
            {
                "model": "cifar10/resnet34",
                "weights_sha256": "ab" * 32,
                "patch_size": 3,
                "num_hyperplanes": [8, 10],
                "accuracy": [87.0, 88.0],
                "accuracy_std": 0.1,
                "accuracy_drop": [1.8, 0.8],
                "flops_reduction": [40.0, 30.0],
                "flops_reduction_std": 0.1,
                "flops_reduction_no_overhead": [50.0, 40.0],
                "seeds": 3,
                "images": 10000,
            }
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # L = 10 is the grid's edge
            unnamed = tables.main_table(results, summary, None)
            read_back = tables.main_table(results, summary, float("nan"))
        pd.testing.assert_frame_equal(read_back, unnamed)

    def test_the_patch_size_table_is_numbered_from_0(self):
        from haste.repro import tables

        frame = lambda patch: pd.DataFrame(
            {
                "model": ["cifar10/resnet34", "cifar10/resnet34"],
                "weights_sha256": "ab" * 32,
                "patch_size": patch,
                "num_hyperplanes": [8, 10],
                "accuracy": [87.0, 88.0],
                "accuracy_std": 0.1,
                "accuracy_drop": [1.8, 0.8],
                "flops_reduction": [40.0, 30.0],
                "flops_reduction_std": 0.1,
                "flops_reduction_no_overhead": [50.0, 40.0],
                "seeds": 3,
                "images": 10000,
            }
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            table = tables.patch_size_table([frame(3), frame(2)])
        assert list(table.index) == [0, 1] and table.patch_size.tolist() == [2, 3]

    def test_a_haste_row_without_its_overhead_counts_none(self):
        from haste.repro import tables

        rows = pd.DataFrame(
            {
                "model": ["m"],
                "num_hyperplanes": [8],
                "flops_dense": [1000.0],
                "flops_haste": [600.0],
                "flops_overhead": [None],  # not recorded: counted as 0
            }
        )
        derived = tables.with_convlinear_baseline(rows, {"m": 900.0})
        # 100 FLOPs outside convs and linear layers: dense 900, HASTE 500 with or without overhead
        expected = 100 * (1 - 500 / 900)
        assert derived.flops_reduction_convlinear_no_overhead.iloc[0] == pytest.approx(expected, rel=1e-12)
        assert derived.flops_reduction_convlinear.iloc[0] == pytest.approx(expected, rel=1e-12)

    def test_a_trend_of_two_checkpoints_and_of_equal_accuracies_by_hand(self):
        from haste.repro import tables

        # two points 0.5 pp apart (a spread of 0.125 < 1): slope (10 - 20) / 0.5 = -20
        points = pd.DataFrame({"baseline_accuracy": [70.0, 70.5], "flops_reduction": [20.0, 10.0]})
        trend = tables.quality_trend(points, ["flops_reduction"], at=71.0).iloc[0]
        assert trend.slope == pytest.approx(-20.0)
        assert trend.flops_reduction_at_baseline == pytest.approx(0.0)
        same = pd.DataFrame({"baseline_accuracy": [70.0, 70.0], "flops_reduction": [20.0, 10.0]})
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # no 0 / 0
            flat = tables.quality_trend(same, ["flops_reduction"], at=70.0).iloc[0]
        assert pd.isna(flat.slope)


class TestDerived:
    """haste/repro/derived.py: its command line, quick runs' empty inputs, and the conv + linear
    baseline derived from the architecture against the one the report measured."""

    def test_the_command_reads_its_folder_from_the_command_line(self, tmp_path, monkeypatch, capsys):
        import shutil
        from pathlib import Path

        from haste.repro import derived

        results = Path(__file__).resolve().parents[1] / "results"
        shutil.copytree(
            results, tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("figures", "quick")
        )
        monkeypatch.setattr("sys.argv", ["python -m haste.repro.derived", str(tmp_path)])
        assert derived.main() == 0
        assert capsys.readouterr().out.splitlines()[0] == f"wrote {tmp_path / next(iter(derived.DERIVED))}"
        with pytest.raises(SystemExit):
            derived.main([str(tmp_path), str(tmp_path)])

    def test_a_sweep_summary_of_two_patch_sizes_is_refused(self, tmp_path):
        from haste.repro import derived

        pd.DataFrame({"model": ["m"], "weights_sha256": ["ab"], "num_hyperplanes": [None]}).to_csv(
            tmp_path / "cifar10_sweep.csv", index=False
        )
        pd.DataFrame({"model": ["m", "m"], "patch_size": [2, 3]}).to_csv(
            tmp_path / "cifar10_sweep_summary.csv", index=False
        )
        with pytest.raises(ValueError, match="one patch size expected"):
            derived.main_table(tmp_path)

    def test_the_trend_of_a_quick_run_without_points_and_of_unbracketed_points(self, tmp_path):
        from haste.repro import derived

        (tmp_path / "checkpoint_quality_points.csv").write_text("")  # no checkpoint had a point
        empty = derived.checkpoint_quality_trend(tmp_path)
        assert empty.checkpoints.tolist() == [0, 0]
        pd.DataFrame(
            {
                "baseline_accuracy": [60.0, 70.0, 80.0],
                "flops_reduction": [30.0, 20.0, 99.0],
                "flops_reduction_no_overhead": [40.0, 30.0, 99.0],
                "bracketed": [True, True, None],  # not known to be bracketed: left out
            }
        ).to_csv(tmp_path / "checkpoint_quality_points.csv", index=False)
        trend = derived.checkpoint_quality_trend(tmp_path)
        assert trend.checkpoints.tolist() == [2, 2] and trend.slope.tolist() == pytest.approx([-1.0, -1.0])

    def test_the_conv_linear_baseline_from_the_architecture_is_the_one_measured(self, tmp_path):
        from pathlib import Path

        from haste.repro import derived

        results = Path(__file__).resolve().parents[1] / "results"
        sweeps = {"3": "cifar10_sweep.csv", "2": "cifar10_patch2_sweep.csv"}
        for name in [*sweeps.values(), "paper_reconciliation_sweep.csv"]:
            rows = pd.read_csv(results / name, dtype={"weights_sha256": str})
            # as rows written before the report measured conv + linear: derived from the architecture
            blank = [
                "flops_dense_convlinear",
                "flops_reduction_convlinear",
                "flops_reduction_convlinear_no_overhead",
            ]
            rows[blank] = float("nan")
            rows.to_csv(tmp_path / name, index=False)
        models = ["cifar10/resnet34", "cifar10/vgg19_bn"]
        rebuilt = derived.reconciliation(tmp_path, models, sweeps)
        committed = pd.read_csv(results / "paper_reconciliation.csv")
        for convention in ("flops_reduction_convlinear", "flops_reduction_convlinear_no_overhead"):
            ours = rebuilt[rebuilt.convention == convention].flops_reduction.tolist()
            measured = committed[committed.convention == convention].flops_reduction.tolist()
            assert ours == pytest.approx(measured, rel=1e-5), convention


def _rel_error(out, expected):
    out, expected = out.detach().double(), expected.double()
    return float((out - expected).abs().max() / expected.abs().max())


class TestFunctional:
    """haste/functional.py: the overflow scale by its documented rule, huge inputs with a bias and
    of either sign, chunked batches, empty batches and the grouping's fallback."""

    @staticmethod
    def hand_scale(peak, channels, pixels, plane_max, dtype_max):
        # below float max / (2 C_in pixels max|h|) nothing can overflow: no scale; above it, the
        # power of two 2^-ceil(log2(peak / limit) + 1)
        import math

        limit = dtype_max / (2.0 * channels * pixels * max(1.0, plane_max))
        return None if peak < limit else 2.0 ** -math.ceil(math.log2(peak / limit) + 1)

    @pytest.mark.parametrize("ratio", [0.5, 1.0, 2.5, 7.0, 100.0])
    @pytest.mark.parametrize("sign", [1.0, -1.0])
    def test_the_overflow_scale_by_its_rule(self, ratio, sign):
        from haste.functional import overflow_scale

        # 3 images of 5 channels, 6 x 7 pixels; hyperplanes of 9 pixels and L = 4, largest |entry| 2.5
        hyperplanes = torch.zeros(9, 4, dtype=torch.float64)
        hyperplanes[3, 1] = -2.5
        limit = torch.finfo(torch.float64).max / (2.0 * 5 * 9 * 2.5)
        x = torch.zeros(3, 5, 6, 7, dtype=torch.float64)
        x[1, 2, 3, 4] = sign * ratio * limit
        expected = self.hand_scale(ratio * limit, 5, 9, 2.5, torch.finfo(torch.float64).max)
        assert overflow_scale(x, hyperplanes) == expected
        x[0, 0, 0, 0] = float("inf")  # the largest finite value decides
        assert overflow_scale(x, hyperplanes) == expected

    def test_the_overflow_scale_of_one_pixel_windows_and_small_planes(self):
        from haste.functional import overflow_scale

        hyperplanes = torch.full((1, 3), 0.5)  # |h| <= 1 counts as 1; one pixel
        limit = torch.finfo(torch.float32).max / (2.0 * 4 * 1 * 1.0)
        x = torch.zeros(2, 4, 3, 3)
        x[0, 0, 0, 0] = 3.0 * limit  # a float32 value near 3 limits
        peak = float(x.amax())
        assert overflow_scale(x, hyperplanes) == self.hand_scale(
            peak, 4, 1, 0.5, torch.finfo(torch.float32).max
        )

    @pytest.mark.parametrize("execution,inference", [("gemm", True), ("gemm", False), ("compressed", True)])
    def test_huge_negative_inputs_with_a_bias_match_the_reference(self, execution, inference):
        from reference import reference_haste_conv

        torch.manual_seed(0)
        conv = nn.Conv2d(8, 4, 3, padding=1)
        layer = HasteConv2d.from_conv(conv, 3, seed=1)
        layer.weight.data.mul_(1e-3)
        layer.execution = execution
        x = -torch.rand(2, 8, 7, 7)  # every value negative: the peak is the smallest
        x[:, 4:] = x[:, :4]
        huge = x.clone()
        huge[0] *= 2.0**125  # the whole batch is scaled: the ordinary image too, and back exactly
        with torch.no_grad():
            conv.bias.fill_(0.5)  # dropped or scaled twice, it shows in the ordinary image
        with torch.set_grad_enabled(not inference):
            out = layer(huge)
        expected, _ = reference_haste_conv(
            huge.double(),
            conv.weight.double(),
            conv.bias.double(),
            (1, 1),
            (1, 1),
            layer.hyperplanes.double(),
            3,
        )
        assert torch.isfinite(out).all()
        assert _rel_error(out[0], expected[0]) < 1e-5 and _rel_error(out[1], expected[1]) < 1e-5

    @pytest.mark.parametrize("grad", [True, False])
    @pytest.mark.parametrize("images", [2, 3])
    def test_a_batch_cut_into_chunks_of_one_image_is_the_whole_batch(self, monkeypatch, grad, images):
        from reference import reference_haste_conv

        import haste.functional as functional

        torch.manual_seed(1)
        conv = nn.Conv2d(6, 4, 3, padding=1).double()
        layer = HasteConv2d.from_conv(conv, 2, seed=2).double()
        x = torch.randn(images, 6, 7, 7, dtype=torch.float64)
        x[:, 3:] = x[:, :3] + 0.05 * torch.randn_like(x[:, 3:])
        expected, buckets = reference_haste_conv(
            x, conv.weight, conv.bias, (1, 1), (1, 1), layer.hyperplanes, layer.patch_size
        )
        monkeypatch.setattr(functional, "CHUNK_BYTES", 1)  # smaller than one image: a chunk each
        with torch.set_grad_enabled(grad):
            out, counts = functional.haste_conv2d(
                x, conv.weight, conv.bias, 1, 1, layer.hyperplanes, layer.patch_size
            )
        assert out.shape == expected.shape and _rel_error(out, expected) < 1e-10
        assert counts.flatten().tolist() == buckets

    def test_an_empty_batch_has_a_bucket_count_per_tile(self):
        from haste.functional import haste_conv2d

        # 9 x 20 input, 3 x 3 kernel, stride (1, 2), padding 1, patch 3: windows 5 x 7
        weight, hyperplanes = torch.randn(4, 6, 3, 3), torch.randn(5 * 7, 2)
        out, counts = haste_conv2d(torch.zeros(0, 6, 9, 20), weight, None, (1, 2), 1, hyperplanes, 3)
        # outputs 9 x 10: tiles ceil(9 / 3) = 3 down, ceil(10 / 3) = 4 across
        assert out.shape == (0, 4, 9, 10) and counts.shape == (0, 12)

    def test_a_scheme_of_its_own_on_the_gradient_path_gives_no_notice(self):
        from haste.functional import haste_conv2d
        from haste.grouping import LSH, Grouping

        class Mine(Grouping):
            name = "mine"

            def group(self, windows, hyperplanes, centre, seed):
                return LSH().group(windows, hyperplanes, centre, seed)

        weight = torch.randn(4, 6, 3, 3, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the notice is for inference the kernels could have run
            haste_conv2d(torch.randn(1, 6, 7, 7), weight, None, 1, 1, torch.randn(25, 2), 3, grouping=Mine())

    @pytest.mark.parametrize("padding", [(1, 0), (0, 1), (1, 1)])
    def test_a_stride_that_leaves_input_rows_and_columns_unread(self, padding):
        from reference import reference_haste_conv

        # 9 x 9 input, 3 x 3 kernel, stride 3, padding 1: (9 + 2 - 3) // 3 + 1 = 3 outputs a side,
        # whose windows end at padded row 8: the input's last row and column are read by no tile
        torch.manual_seed(3)
        conv = nn.Conv2d(4, 3, 3, stride=3, padding=padding).double()
        layer = HasteConv2d.from_conv(conv, 2, seed=4).double()
        x = torch.randn(2, 4, 9, 9, dtype=torch.float64)
        x[:, 2:] = x[:, :2] + 0.05 * torch.randn_like(x[:, 2:])
        expected, _ = reference_haste_conv(x, conv.weight, conv.bias, (3, 3), padding, layer.hyperplanes, 3)
        for grad in (True, False):
            with torch.set_grad_enabled(grad):
                assert _rel_error(layer(x), expected) < 1e-10, grad

    def test_the_functional_s_seed_is_0_by_default(self):
        from haste.functional import haste_conv2d

        torch.manual_seed(5)
        x, weight, planes = torch.randn(1, 6, 7, 7), torch.randn(4, 6, 3, 3), torch.randn(25, 2)
        with torch.no_grad():
            unnamed = haste_conv2d(x, weight, None, 1, 1, planes, 3, grouping="random")
            zero = haste_conv2d(x, weight, None, 1, 1, planes, 3, grouping="random", seed=0)
            one = haste_conv2d(x, weight, None, 1, 1, planes, 3, grouping="random", seed=1)
        assert torch.equal(unnamed[0], zero[0]) and not torch.equal(unnamed[0], one[0])
