"""``python -m haste diff OLD NEW``: compare two result CSVs, or two result folders, row by row.

Rows are aligned by their keys (for measurement rows the measurement keys: model, checkpoint,
settings, L, seed, images; for tables and summaries the columns that name what a row is about) and
every row is put in one class:

- ``identical``: every value equal;
- ``rounding``: the differences are within what another CPU, batch size or thread count gives (the
  tolerance of ``python -m haste verify``: a few predictions per 10,000 images, FLOPs to 1e-3);
- ``seed noise``: the differences are within the standard deviation over hyperplane seeds (of the
  old rows of the same model, settings and L, or a summary's own ``*_std`` column);
- ``changed``, ``missing`` (in OLD only), ``added`` (in NEW only).

Provenance (commit, code fingerprint, version) and wall times (which are the machine's, not the
code's) are not compared. The report is Markdown; the exit
status is 1 when a row is changed or missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..settings import HasteSettings
from .verify import FLOPS_TOLERANCE, allowed_prediction_change

CLASSES = ("identical", "rounding", "seed noise", "changed", "missing", "added")
PROVENANCE = {
    "commit",
    "code_fingerprint",
    "haste_version",
    "compared_at",
    "train_commit",
    "torch",
    "numba",
    "cpu",
}
# wall times and their ratios: another machine, or another run on the same one, times otherwise
WALL_TIMES = {"seconds_per_batch", "time_ratio"}
# columns that say what a row of a table or summary is about (besides the measurement keys)
KEY_NAMES = [
    "model",
    "weights_sha256",
    "epochs",
    "variant",
    "method",
    "target",
    "convention",
    *HasteSettings.__dataclass_fields__,
    "num_hyperplanes",
    "seed",
    "images",
    "transform",
    "layer",
    "bin_left",
    "reference",
    "batch_size",
    "threads",
    "reduction",
    "file",
]


@dataclass
class FileDiff:
    name: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    details: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def failed(self) -> bool:
        return self.counts["changed"] > 0 or self.counts["missing"] > 0


def read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"no CSV at {path}")
    try:
        return pd.read_csv(path, dtype={"weights_sha256": str, "commit": str, "code_fingerprint": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a CSV ({str(error).splitlines()[0]})") from error


def key_columns(old: pd.DataFrame, new: pd.DataFrame) -> list[str]:
    from .result_rows import MEASUREMENT_KEYS

    both = set(old.columns) & set(new.columns)
    if set(MEASUREMENT_KEYS) <= both:  # measurement rows: what they measured, not where they ran
        keys = [c for c in ["variant", "epochs", *MEASUREMENT_KEYS] if c in both]
        if not old.duplicated(keys).any() and not new.duplicated(keys).any():
            return keys
    shared = [c for c in KEY_NAMES if c in both]
    if shared and not old.duplicated(shared).any() and not new.duplicated(shared).any():
        return shared
    text = [c for c in old.columns if c in new.columns and c not in PROVENANCE and old[c].dtype == object]
    keys = list(dict.fromkeys(shared + text))
    if keys and not old.duplicated(keys).any() and not new.duplicated(keys).any():
        return keys
    return []  # aligned by position


def _equal(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if pd.isna(a) and pd.isna(b):
        return True
    return str(a) == str(b)


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number


def within_rounding(column: str, a: float, b: float, images: int) -> bool:
    difference, larger = abs(a - b), max(abs(a), abs(b))
    if larger == 0 or difference <= 1.0001 * 10 ** (math.floor(math.log10(larger)) - 5):
        return True  # one unit in the 6th significant digit: the CSVs' rounding
    if "accuracy" in column:  # percent of images
        return difference * images / 100 <= allowed_prediction_change(images) + 1e-6
    if column.startswith("flops_reduction") or column.endswith("_reduction"):  # percent
        return difference <= FLOPS_TOLERANCE * 100
    if column.startswith("flops"):
        return difference <= FLOPS_TOLERANCE * max(abs(a), abs(b))
    return False


def classify(old: pd.Series, new: pd.Series, columns: list[str], noise) -> tuple[str, str]:
    """The class of one aligned row, and its differing columns as ``column old -> new``; ``noise()``
    gives the seed noise per column (called only when needed)."""
    differing = [c for c in columns if not _equal(old[c], new[c])]
    if not differing:
        return "identical", ""
    text = ", ".join(f"{c} {old[c]} -> {new[c]}" for c in differing)
    images = int(_number(old.get("images")) or 10_000)
    numbers = {c: (_number(old[c]), _number(new[c])) for c in differing}
    if any(a is None or b is None or math.isnan(a) or math.isnan(b) for a, b in numbers.values()):
        return "changed", text
    pairs = {c: (a, b) for c, (a, b) in numbers.items() if a is not None and b is not None}
    if all(within_rounding(c, a, b, images) for c, (a, b) in pairs.items()):
        return "rounding", text
    bounds = noise()
    if all(c in bounds and abs(a - b) <= bounds[c] for c, (a, b) in pairs.items()):
        return "seed noise", text
    return "changed", text


def seed_noise(old: pd.DataFrame, keys: list[str], row: pd.Series) -> dict[str, float]:
    """Per column, the std over seeds that bounds seed noise for ``row``: of the old rows that differ
    from it only in the seed, else the row's own ``<column>_std``."""
    noise = {}
    for column in old.columns:
        std_column = f"{column}_std"
        if std_column in row.index and _number(row[std_column]) is not None:
            noise[column] = float(row[std_column])
    if "seed" in keys and not pd.isna(row.get("num_hyperplanes")):
        others = [k for k in keys if k != "seed"]
        group = old[
            (old[others] == row[others]).all(axis=1) | (old[others].isna() & row[others].isna()).all(axis=1)
        ]
        if len(group) > 1:
            for column in old.columns:
                if column not in keys and pd.api.types.is_numeric_dtype(old[column]):
                    noise[column] = float(group[column].std())
    return noise


def diff_tables(name: str, old: pd.DataFrame, new: pd.DataFrame) -> FileDiff:
    result = FileDiff(name)
    if set(old.columns) != set(new.columns):
        only_old = sorted(set(old.columns) - set(new.columns))
        only_new = sorted(set(new.columns) - set(old.columns))
        result.note = (
            f"columns differ (only in OLD: {only_old}; only in NEW: {only_new}); shared ones compared"
        )
    keys = key_columns(old, new)
    compared = lambda c: c in new.columns and c not in keys and c not in PROVENANCE | WALL_TIMES
    columns = [c for c in old.columns if compared(c)]
    if keys:
        old_keys, new_keys = _key_text(old, keys), _key_text(new, keys)
    else:
        old_keys = pd.Series(old.index.astype(str), index=old.index)
        new_keys = pd.Series(new.index.astype(str), index=new.index)
    new_by_key = dict(zip(new_keys, new.index))
    old_set = set(old_keys)
    for index, key in old_keys.items():
        row = old.loc[index]
        if key not in new_by_key:
            result.counts["missing"] += 1
            result.details.append(f"| missing | {_label(row, keys)} | |")
            continue
        noise = lambda row=row: seed_noise(old, keys, row)
        kind, text = classify(row, new.loc[new_by_key[key]], columns, noise)
        result.counts[kind] += 1
        if kind != "identical":
            result.details.append(f"| {kind} | {_label(row, keys)} | {text} |")
    for index, key in new_keys.items():
        if key not in old_set:
            result.counts["added"] += 1
            result.details.append(f"| added | {_label(new.loc[index], keys)} | |")
    return result


def _text(value) -> str:
    """A key value as text, equal for 14 and 14.0 (a column with NaN is read as floats)."""
    if pd.isna(value):
        return ""
    number = _number(value)
    if number is not None and number.is_integer() and not isinstance(value, bool):
        return str(int(number))
    return str(value)


def _key_text(frame: pd.DataFrame, keys: list[str]) -> pd.Series:
    return frame[keys].apply(lambda row: "|".join(_text(v) for v in row), axis=1)


def _label(row: pd.Series, keys: list[str]) -> str:
    if not keys:
        return f"row {row.name}"
    parts = [f"{k}={row[k]}" for k in keys if not pd.isna(row[k]) and k != "weights_sha256"]
    return ", ".join(parts)


def csv_pairs(old: Path, new: Path) -> list[tuple[str, Path, Path]]:
    if not old.exists():
        raise FileNotFoundError(f"no such file or folder: {old}")
    if not new.exists():
        raise FileNotFoundError(f"no such file or folder: {new}")
    if old.is_dir() != new.is_dir():
        raise ValueError(f"compare two CSVs or two folders, not {old} and {new}")
    if not old.is_dir():
        return [(new.name, old, new)]
    names = sorted(_result_csvs(old))
    names += sorted(_result_csvs(new) - set(names))
    return [(name, old / name, new / name) for name in names]


def _result_csvs(folder: Path) -> set[str]:
    """The CSVs under ``folder``, without quick mode's (``quick/``: never committed; name such a
    folder itself to compare it)."""
    found = (path.relative_to(folder) for path in folder.rglob("*.csv"))
    return {path.as_posix() for path in found if "quick" not in path.parts[:-1]}


def diff(old: Path, new: Path) -> list[FileDiff]:
    diffs = []
    for name, old_csv, new_csv in csv_pairs(Path(old), Path(new)):
        if not new_csv.is_file() or not old_csv.is_file():
            present = read_csv(old_csv if old_csv.is_file() else new_csv)
            result = FileDiff(name, note="in OLD only" if old_csv.is_file() else "in NEW only")
            result.counts["missing" if old_csv.is_file() else "added"] = len(present)
            diffs.append(result)
            continue
        old_table, new_table = read_csv(old_csv), read_csv(new_csv)
        if old.is_file() and not set(old_table.columns) & set(new_table.columns):
            raise ValueError(f"{old} and {new} share no column: not two versions of one result")
        diffs.append(diff_tables(name, old_table, new_table))
    return diffs


def report(diffs: list[FileDiff], details: int = 20) -> str:
    lines = ["| file | " + " | ".join(CLASSES) + " |", "|---|" + "---|" * len(CLASSES)]
    for d in diffs:
        lines.append(f"| `{d.name}` | " + " | ".join(str(d.counts[c]) for c in CLASSES) + " |")
    for d in diffs:
        if d.note or d.details:
            lines += ["", f"**`{d.name}`**" + (f": {d.note}" if d.note else "")]
        if d.details:
            lines += ["", "| class | row | differences |", "|---|---|---|", *d.details[:details]]
            if len(d.details) > details:
                lines.append(f"| ... | {len(d.details) - details} more | |")
    failed = [d.name for d in diffs if d.failed]
    lines += ["", f"**{'changed or missing rows in ' + ', '.join(failed) if failed else 'no row changed'}**"]
    return "\n".join(lines)


def main(args) -> int:
    diffs = diff(Path(args.old), Path(args.new))
    print(report(diffs, args.details))
    return 1 if any(d.failed for d in diffs) else 0
