"""Give committed result rows today's code fingerprint where the code that computed them is shown to
compute the same numbers as today's, and record what was shown in ``results/code_checks.csv``.

For each commit that computed rows not stamped with today's fingerprint, ``numeric_battery.py`` runs
in a checkout of that commit and on today's code (one thread, the same images). A row is re-stamped
when every battery case it depends on (the images, its model's dense logits, and for a HASTE row
the case of its settings; for a baseline row, its method at its target) is bit-identical; a row whose
case differs or does not exist (another method, another dataset) keeps its old fingerprint, is
listed, and must be measured again.

    python scripts/restamp_rows.py [--dry-run] [--all] [--data CIFAR10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))  # numeric_battery takes the editable install's finder away: this haste

from numeric_battery import CASES, L1_CASE  # noqa: E402

from haste.repro import baselines as baseline_runner  # noqa: E402
from haste.repro.provenance import code_fingerprint, git_commit  # noqa: E402
from haste.repro.result_rows import RESULT_COLUMNS, read_rows, save_rows  # noqa: E402
from haste.repro.verify import MEASUREMENT_CSVS  # noqa: E402
from haste.settings import HasteSettings  # noqa: E402
from haste.zoo.files import atomic_write_csv, atomic_write_text, cache_dir  # noqa: E402

CHECKS = ROOT / "results" / "code_checks.csv"
BASELINES_CSV = "baselines.csv"  # its rows carry the fingerprint extended by the baselines' code
IMAGENET = str((ROOT / ".." / "shared" / "data" / "imagenet-val-1300").resolve())
DEFAULTS = asdict(HasteSettings())  # the paper's settings, which a battery case varies one at a time
SETTINGS = list(DEFAULTS)


def battery(checkout: Path, data: str) -> dict:
    """The battery's outputs for the haste in ``checkout``, cached by the checkout's commit."""
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True, check=True
    ).stdout.strip()
    # today's code by its fingerprint (whatever commit holds it), an earlier commit's by the commit
    today = checkout == ROOT
    stored = cache_dir() / "battery" / (f"today-{code_fingerprint()}.json" if today else f"{commit}.json")
    if stored.is_file():
        return json.loads(stored.read_text())
    print(f"battery at {'today' if today else commit[:10]} ...", flush=True)
    found = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "numeric_battery.py"),
            "--data",
            data,
            "--imagenet",
            IMAGENET,
        ],
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": str(checkout), "HASTE_RESULT_CACHE": "0"},
        capture_output=True,
        text=True,
        check=True,
    )
    outputs = json.loads(found.stdout)
    assert outputs["haste"].startswith(str(checkout)), outputs["haste"]  # that commit's code ran
    atomic_write_text(json.dumps(outputs, indent=1), stored)
    return outputs


def battery_at(commit: str, data: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="haste-at-") as tmp:
        checkout = Path(tmp) / "checkout"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(checkout), commit], cwd=ROOT, check=True
        )
        try:
            return battery(checkout, data)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(checkout)], cwd=ROOT, check=True)


def same(earlier, current) -> bool:
    """Whether a case's outputs agree: equal text, or equal logits and equal numbers where both
    versions report them (a later version reports more FLOP terms); a case without logits must
    give every number the earlier version gave."""
    if not (isinstance(earlier, dict) and isinstance(current, dict)):
        return earlier == current
    shared = earlier.keys() & current.keys()
    # logits in both, or (a case of numbers only, the L1 control's) every number of the earlier one
    return all(earlier[key] == current[key] for key in shared) and (
        "logits" in shared or shared == earlier.keys()
    )


def _same_value(a, b) -> bool:
    try:
        return abs(float(a) - float(b)) < 1e-4
    except (TypeError, ValueError):
        return str(a) == str(b)


def case_of(row: pd.Series) -> str | None:
    """The battery case a row's settings are, or None."""
    for case, settings in CASES.items():
        wanted = {**DEFAULTS, **settings}
        if all(_same_value(row[column], wanted[column]) for column in SETTINGS):
            return case
    return None


def needed_cases(row: pd.Series) -> list[str] | None:
    if row["model"] == "imagenet/resnet50-keras":
        cases = [f"{row['model']} dense"]
        if pd.isna(row["num_hyperplanes"]):
            return cases
        return (
            cases + [f"{row['model']} L=28 seed=0 sparsity=0.5"] if case_of(row) == "sparsity=0.5" else None
        )
    if not str(row["model"]).startswith("cifar10/"):
        return None
    cases = ["images", f"{row['model']} dense"]
    if pd.isna(row["num_hyperplanes"]):
        return cases
    if row["grouping"] == "l1-pruning":  # the static control, not HASTE: a case of its own
        return cases + [L1_CASE] if row["model"] == "cifar10/resnet34" else None
    case = case_of(row)
    return None if case is None else cases + [f"{row['model']} L=14 seed=0 {case}"]


def baseline_cases(row: pd.Series, current: dict) -> list[str] | None:
    """The battery cases a row of ``baselines.csv`` depends on, or None where none shows it: a static
    method's row also needs the FLOPs it records to be the battery's count of that compression, and
    its drop and reduction to follow from its own numbers (the runner's arithmetic)."""
    model, method = row["model"], row["method"]
    cases = ["images", f"{model} dense"]
    if method == "dense":
        return cases
    if method in baseline_runner.HASTE_METHODS:  # timed at an L of the sweep summary, by default settings
        return cases + [f"{model} L=14 seed=0 default"]
    case = f"{model} baseline {method} {float(row['target']):g}%"
    if method not in baseline_runner.STATIC_METHODS or not isinstance(current.get(case), dict):
        return None
    reduction = 100.0 * (1 - float(row["flops"]) / float(row["flops_dense"]))
    written = float(f"{current[case]['flops']:.6g}")  # as the runner writes it: 6 significant digits
    if float(row["flops"]) != written or abs(reduction - float(row["flops_reduction"])) > 1e-3:
        return None
    return cases + [case]


def baseline_rows_consistent(table: pd.DataFrame) -> pd.Series:
    """Whether each row's drop is its model's dense accuracy minus its own (6 significant digits)."""
    dense = table[table["method"] == "dense"].set_index("weights_sha256")["accuracy"]
    expected = table["weights_sha256"].map(dense) - table["accuracy"]
    return (expected - table["accuracy_drop"]).abs().le(1e-3) | table["accuracy"].isna()


FULL_SPLIT = {"cifar10": 10_000, "imagenet": 1_300}


def data_identity(row: pd.Series, data: str, known: dict) -> str | None:
    """The ``data_sha256`` of the images a row was measured on, or None where that cannot be shown:
    a whole split is the split (the battery's first images agree, the files are fixed); a subset is
    the one today's seeded subset draws only if the shipped model's dense accuracy on it equals the
    row's dense row (checked once per model and image count)."""
    from haste import zoo
    from haste.evaluate import evaluate
    from haste.repro.experiments import evaluation_batches
    from haste.zoo.data import data_fingerprint

    images, name = int(row["images"]), row["model"]
    dataset = zoo.spec(name).dataset
    full = images == FULL_SPLIT[dataset]
    key = (dataset, images) if full else (name, row["weights_sha256"], images)
    if key not in known:
        root = IMAGENET if dataset == "imagenet" else data
        batches = evaluation_batches(name, root, None if full else images, batch_size=32, resize=None)
        known[key] = data_fingerprint(batches)
        if not full:
            model, info = zoo.load(name, download=False)
            dense = row.get("_dense_accuracy")
            same_model = info.sha256 == row["weights_sha256"]
            if not same_model or dense is None or abs(evaluate(model, batches).accuracy - dense) > 1e-4:
                known[key] = None
    return known[key]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str((ROOT / ".." / "shared" / "data" / "cifar10-jpeg").resolve()))
    parser.add_argument("--dry-run", action="store_true", help="compare and report; write nothing")
    parser.add_argument("--all", action="store_true", help="compare every row, today's ones included")
    args = parser.parse_args()
    today = code_fingerprint()
    fingerprints = {name: today for name in MEASUREMENT_CSVS}
    tables = {name: read_rows(ROOT / "results" / name) for name in MEASUREMENT_CSVS}
    if (ROOT / "results" / BASELINES_CSV).is_file():
        fingerprints[BASELINES_CSV] = baseline_runner.code_fingerprint_with_baselines()
        tables[BASELINES_CSV] = baseline_runner.read_rows(ROOT / "results" / BASELINES_CSV)
    stale = {
        name: table[table["code_fingerprint"].fillna("") != fingerprints[name]]
        if "code_fingerprint" in table and not args.all
        else table
        for name, table in tables.items()
    }
    commits = sorted({c for table in stale.values() for c in table["commit"].dropna()})
    if not commits:
        print("every row carries today's fingerprint")
        return 0
    current = battery(ROOT, args.data)
    checks = []
    for commit in commits:
        earlier = battery_at(commit, args.data)
        equal = {case for case in current if case in earlier and same(earlier[case], current[case])}
        restamped, kept = 0, []
        for name, table in stale.items():
            rows = table[table["commit"] == commit]
            consistent = baseline_rows_consistent(tables[name]) if name == BASELINES_CSV else None
            for index, row in rows.iterrows():
                if name == BASELINES_CSV:
                    cases = baseline_cases(row, current) if consistent[index] else None
                else:
                    cases = needed_cases(row)
                if cases is not None and all(case in equal for case in cases):
                    tables[name].loc[index, "code_fingerprint"] = fingerprints[name]
                    restamped += 1
                else:
                    kept.append(f"{name}:{index}")
        differing = sorted(  # cases both versions ran (n/a: a model not shipped then)
            case
            for case in current
            if case in earlier
            and case not in equal
            and case != "haste"
            and not str(earlier[case]).startswith("n/a")
        )
        checks.append(
            {
                "commit": commit,
                "compared_at": git_commit(),
                "fingerprint": today,
                "cases_equal": len(equal),
                "cases_differing": ";".join(differing),
                "rows_restamped": restamped,
                "rows_not_shown_current": ";".join(kept),
            }
        )
        print(
            f"{commit[:10]}: {len(equal)} cases equal, {len(differing)} differ; {restamped} rows re-stamped, "
            f"{len(kept)} not shown current"
        )
    if args.dry_run:
        return 0
    known: dict = {}
    for name, table in tables.items():
        if name == BASELINES_CSV:  # as the runner writes it; its rows record their data and run
            atomic_write_csv(table, ROOT / "results" / name, float_format="%.6g")
            continue
        extra = [c for c in table.columns if c not in RESULT_COLUMNS]
        table = table.reindex(columns=RESULT_COLUMNS + extra)
        table = table.astype({"data_sha256": object, "device": object})
        dense = table[table["num_hyperplanes"].isna()].set_index(["model", "weights_sha256", "images"])
        for index, row in table[table["code_fingerprint"] == today].iterrows():
            if pd.isna(row["data_sha256"]):  # what a row records of its data and run, where known
                group = (row["model"], row["weights_sha256"], row["images"])
                row = row.copy()
                row["_dense_accuracy"] = dense["accuracy"].get(group)
                table.loc[index, "data_sha256"] = data_identity(row, args.data, known)
            if pd.isna(row["batch_size"]):  # the runners' batch size for these rows at every commit
                table.loc[index, "batch_size"] = 32 if row["model"].startswith("imagenet/") else 256
        save_rows(table, ROOT / "results" / name)
    previous = pd.read_csv(CHECKS, dtype=str) if CHECKS.is_file() else pd.DataFrame()
    atomic_write_csv(pd.concat([previous, pd.DataFrame(checks).astype(str)]), CHECKS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
