"""The code fingerprint covers exactly the code that decides a measured value (by its rule: what a
sweep and the L1 control import while they measure), and ignores docstrings, comments and messages."""

import json
import subprocess
import sys
from pathlib import Path

from haste.repro import provenance

ROOT = Path(__file__).resolve().parents[1]

MEASURE = """
import json, sys
from pathlib import Path
from test_data import make_tree
from haste.zoo.imagenet_wnids import WNIDS
from haste.repro import controls, experiments
from PIL import Image
root = Path(sys.argv[1])
data = make_tree(root / "cifar", per_class=1)
experiments.sweep("cifar10/resnet18", [8], [0], data, limit=4, batch_size=4, progress=False)
controls.l1_pruning_control("cifar10/resnet18", [8], [0], data, limit=4, progress=False)
(root / "val" / WNIDS[0]).mkdir(parents=True)
for i in range(2):
    Image.new("RGB", (80, 64), (i * 90, 30, 200)).save(root / "val" / WNIDS[0] / f"{i}.JPEG")
options = {"weights": None, "batch_size": 2, "progress": False, "per_image": True}
experiments.sweep("imagenet/resnet18", [8], [0], root / "val", **options)
print(json.dumps(sorted(name for name in sys.modules if name == "haste" or name.startswith("haste."))))
"""


def test_the_fingerprint_covers_every_module_a_sweep_or_the_control_imports_while_measuring(tmp_path):
    # a fresh interpreter: what this test process imported for other tests does not count
    found = subprocess.run(
        [sys.executable, "-c", MEASURE, str(tmp_path)],
        cwd=ROOT / "tests",
        capture_output=True,
        text=True,
        check=True,
    )
    imported = json.loads(found.stdout.strip().splitlines()[-1])
    assert sorted(provenance.FINGERPRINTED) == imported


def test_docstrings_comments_and_messages_leave_the_fingerprint_alone(tmp_path):
    source = (ROOT / "haste" / "repro" / "experiments.py").read_text()
    original = tmp_path / "original.py"
    original.write_text(source)
    reworded = tmp_path / "reworded.py"
    reworded.write_text(
        source.replace('"""Dense baseline plus HASTE', '"""Reworded: dense baseline plus HASTE')
        .replace("# converted once per seed", "# converted once for each seed")
        .replace("expected K/N with 0 <= K < N", "K must lie in [0, N)")
        .replace("reused {len(reused)} of", "took {len(reused)} of")
    )
    assert reworded.read_text() != source
    assert provenance.module_code(reworded) == provenance.module_code(original)


def test_code_that_decides_values_changes_the_fingerprint(tmp_path):
    source = (ROOT / "haste" / "repro" / "experiments.py").read_text()
    assert "seed=seed" in source  # the runner's conversion: the seed it passes decides every row
    original, edited = tmp_path / "original.py", tmp_path / "edited.py"
    original.write_text(source)
    edited.write_text(source.replace("seed=seed", "seed=seed + 1", 1))
    assert provenance.module_code(edited) != provenance.module_code(original)
    assert "haste.repro.experiments" in provenance.FINGERPRINTED


def test_every_committed_measurement_row_carries_todays_fingerprint():
    """A committed row is of today's code: measured by it, or shown by scripts/restamp_rows.py to have
    been computed by code that computes the same numbers (results/code_checks.csv). After an edit to
    code that decides values, measure the rows again or run that script."""
    import pandas as pd

    from haste.repro.baselines import code_fingerprint_with_baselines
    from haste.repro.verify import MEASUREMENT_CSVS, RESULTS

    today = {name: provenance.code_fingerprint() for name in [*MEASUREMENT_CSVS, "patch_compression.csv"]}
    today["baselines.csv"] = code_fingerprint_with_baselines()  # the core's and the baselines' code
    stale = {}
    for name, fingerprint in today.items():
        rows = pd.read_csv(RESULTS / name, dtype={"code_fingerprint": str})
        fingerprints = rows.get("code_fingerprint", pd.Series(["none"] * len(rows)))
        count = int((fingerprints.fillna("none") != fingerprint).sum())
        if count:
            stale[name] = count
    assert not stale, f"rows not of today's code (re-measure, or python scripts/restamp_rows.py): {stale}"
