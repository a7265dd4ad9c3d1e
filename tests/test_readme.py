"""The tables of README.md and docs/ are what the committed CSVs render to (never typed by hand)."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

from haste.repro import readme
from haste.repro.readme import Column, Table, fixed, mean_std, strong, text

ROOT = Path(__file__).resolve().parents[1]


def test_every_committed_table_matches_its_csvs():
    assert readme.stale() == [], "run `python -m haste.repro.readme` and commit the result"


def test_the_main_table_and_the_checkpoints_are_rendered():
    marked = {m["name"] for path in readme.documents() for m in readme.MARKER.finditer(path.read_text())}
    assert {"cifar10_main", "checkpoints"} <= marked
    assert marked == set(readme.TABLES)  # every table is used, none is unknown


def test_a_table_renders_as_written_by_hand(tmp_path):
    csv = "model,acc,acc_std,paper\nm/a,87.6467,0.077603,46.72\nm/b,86.3,0.5,\n"
    (tmp_path / "points.csv").write_text(csv)
    table = Table(
        ("points.csv",),
        (
            Column("model", text("model", "`{}`")),
            Column("accuracy (%)", mean_std("acc")),
            Column("paper (%)", strong(fixed("paper"), lambda row: not pd.isna(row["paper"]))),
        ),
    )
    assert readme.render(table, tmp_path) == (
        "| model | accuracy (%) | paper (%) |\n"
        "|---|---|---|\n"
        "| `m/a` | 87.65 ± 0.08 | **46.72** |\n"
        "| `m/b` | 86.30 ± 0.50 | - |\n"
    )


def test_a_changed_csv_makes_its_table_stale(tmp_path):
    shutil.copytree(ROOT / "results", tmp_path / "results")
    shutil.copytree(ROOT / "weights", tmp_path / "weights", ignore=shutil.ignore_patterns("*.safetensors"))
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    assert readme.stale(tmp_path) == []
    manifest = pd.read_csv(tmp_path / "weights" / "manifest.csv", dtype=str)
    manifest.loc[0, "test_accuracy"] = "12.34"
    manifest.to_csv(tmp_path / "weights" / "manifest.csv", index=False)
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "checkpoints.md", tmp_path / "docs" / "checkpoints.md")
    assert readme.stale(tmp_path) == ["docs/checkpoints.md: checkpoints"]
    document = (tmp_path / "docs" / "checkpoints.md").read_text()
    assert "| 12.34 |" in readme.rendered(document, tmp_path)


def test_an_unknown_table_is_refused():
    with pytest.raises(KeyError, match="unknown table 'nonsense'"):
        readme.rendered("<!-- table:nonsense -->\n<!-- /table -->\n")
