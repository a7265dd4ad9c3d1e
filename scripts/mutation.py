"""Mutation testing of HASTE's core and table builders with cosmic-ray (``pip install cosmic-ray``).

    python scripts/mutation.py                      # every module of scripts/mutation.toml
    python scripts/mutation.py haste/hashing.py     # one module (or several)
    python scripts/mutation.py --list               # the modules and their test selections

cosmic-ray finds the mutants (its operators, less the binary and comparison replacements that
``[operators]`` of scripts/mutation.toml leaves out), applies each one to a file and keeps the
results in its session database (``cr-report`` reads it). The tests of a mutant run in a process
forked from this one, which has imported torch, numba, pandas and pytest but not ``haste``: a
mutant costs its tests, not the seconds of a fresh interpreter's imports.

Nothing in this checkout is mutated: the files git knows (tracked and untracked, not ignored) are
copied to a scratch folder (``--scratch``, default ``$TMPDIR/haste-mutation``) and the mutants are
applied there, where the tests import ``haste`` from. A module's session is kept there and resumed
by the next run while the package, its test files and its test selection are unchanged; when tests
were only added (to tests/test_mutation_kills.py, or to the selection), only its survivors run again.

At the end, docs/mutation.md gets the per-module table, the surviving mutants and the
equivalent ones (from scripts/mutation_equivalent.toml, each with its reason) rewritten between
their markers. A survivor listed as equivalent is counted as equivalent, not as survived.
"""

from __future__ import annotations

import argparse
import compileall
import difflib
import gc
import hashlib
import importlib.util
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: cosmic-ray's own TOML reader
    import toml as tomllib

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "scripts" / "mutation.toml"
EQUIVALENT = ROOT / "scripts" / "mutation_equivalent.toml"
DOCUMENT = ROOT / "docs" / "mutation.md"
KILLS = "tests/test_mutation_kills.py"  # the tests written against survivors: they are only ever added
# Imported before any fork, never ``haste``: each mutant's process imports the mutated package itself.
PRELOAD = ("numpy", "torch", "torchvision", "pandas", "numba", "fvcore.nn", "safetensors.torch", "tqdm")
# -x: a mutant is killed by its first failing test. unraisableexception's garbage collections cost a
# second per run (torch's heap). Plugins are not auto-loaded either (PYTEST_DISABLE_PLUGIN_AUTOLOAD):
# a selection that needs one (pytest-benchmark's fixture) names it with "-p NAME".
PYTEST_OPTIONS = ["-x", "-q", "--no-header", "-p", "no:cacheprovider", "-p", "no:unraisableexception"]
MARKERS = {  # section of docs/mutation.md -> (opening, closing) marker
    "table": ("<!-- mutation:table -->", "<!-- /mutation:table -->"),
    "survivors": ("<!-- mutation:survivors -->", "<!-- /mutation:survivors -->"),
    "equivalent": ("<!-- mutation:equivalent -->", "<!-- /mutation:equivalent -->"),
}
HEADER = "| module | kind | mutants | killed | of them by timeout | survived | equivalent | score | time |"
NOT_RUN = "not run yet"
UNSAMPLED = "not sampled"


# --- configuration ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Module:
    path: str  # relative to the repository root
    kind: str  # "core" or "table builder"
    tests: tuple[str, ...]  # pytest arguments: files and node ids

    @property
    def command(self) -> str:
        return f"python scripts/mutation.py {self.path}"


def load_modules(config: dict) -> dict[str, Module]:
    return {
        path: Module(path, entry["kind"], tuple(entry["tests"])) for path, entry in config["modules"].items()
    }


def kept_operator(name: str, config: dict) -> bool:
    """Whether cosmic-ray's operator ``name`` is run: all but the left-out binary and comparison pairs."""
    match = re.fullmatch(r"core/Replace(Binary|Comparison)Operator_(\w+?)_(\w+)", name)
    if not match:
        return True
    family, source, target = match.groups()
    return target in config["operators"][family.lower()].get(source, ())


def load_equivalents(path: Path = EQUIVALENT) -> list[dict]:
    entries = tomllib.loads(path.read_text()).get("equivalent", []) if path.exists() else []
    for entry in entries:
        missing = {"module", "function", "original", "mutant", "reason"} - set(entry)
        if missing:
            raise SystemExit(f"{path.name}: an entry lacks {', '.join(sorted(missing))}: {entry}")
    return entries


# --- mutants and their identity ----------------------------------------------------------------------


def diff_text(original: str, mutated: str, path: str) -> str:
    lines = difflib.unified_diff(
        original.splitlines(), mutated.splitlines(), f"a/{path}", f"b/{path}", lineterm="", n=1
    )
    return "\n".join(lines)


def mutant_key(module: str, function: str | None, diff: str) -> tuple[str, str, str, str]:
    """A mutant as scripts/mutation_equivalent.toml names it: module, function, removed and added lines.

    The lines are stripped and joined by `` / ``; no line number, so an entry outlives edits elsewhere.
    """
    lines = diff.splitlines()[2:]  # past the ---/+++ header
    removed = [line[1:].strip() for line in lines if line.startswith("-")]
    added = [line[1:].strip() for line in lines if line.startswith("+")]
    return module, function or "", " / ".join(removed), " / ".join(added)


# --- the scratch copies ------------------------------------------------------------------------------


def checkout_files(root: Path) -> list[str]:
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        check=True,
        capture_output=True,
    ).stdout
    return [name for name in listing.decode().split("\0") if name and (root / name).is_file()]


def make_copy(root: Path, target: Path) -> None:
    """``target`` holds the checkout's files as they are now (a mutated leftover is overwritten)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in checkout_files(root):
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, destination)
    compileall.compile_dir(str(target / "haste"), quiet=1)  # unmutated modules import from bytecode


def _digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path).encode() + b"\0" + (path.read_bytes() if path.is_file() else b"(absent)"))
    return digest.hexdigest()


def fingerprint(module: Module, copy: Path, sample: int | None = None) -> dict:
    """What a session's verdicts depend on: the package, the test fixtures, each test file, the selection."""
    package = sorted((copy / "haste").rglob("*.py")) + [
        copy / "tests/conftest.py",
        copy / "tests/reference.py",
    ]
    files = sorted({test.split("::")[0] for test in module.tests if not test.startswith("-")})
    return {
        "package": _digest(package),
        "tests": {name: _digest([copy / name]) for name in files},
        "selection": list(module.tests),
        "sample": sample,
    }


MODES = {"fresh": "new session", "resume": "resuming", "survivors": "tests added: the survivors run again"}


def resumption(old: dict | None, new: dict) -> str:
    """``"resume"`` (nothing changed), ``"survivors"`` (tests were only added: the killed stay killed,
    the survivors run again) or ``"fresh"`` (anything else changed: every verdict is run again).

    Tests are only ever added to tests/test_mutation_kills.py, so a change to it alone, or a selection
    that grew, keeps the kills; a change to any other test file might have weakened a test.
    """
    if old is None or old.get("package") != new["package"] or old.get("sample") != new.get("sample"):
        return "fresh"
    if not set(old["selection"]) <= set(new["selection"]):
        return "fresh"
    changed = {name for name, digest in old["tests"].items() if new["tests"].get(name) != digest}
    if changed - {KILLS}:
        return "fresh"
    return "resume" if old == new else "survivors"


# --- running the tests in a forked process ----------------------------------------------------------


def preload() -> None:
    """Import the heavy dependencies once (never ``haste``), so that every fork starts warm."""
    with warnings.catch_warnings():  # their import-time notices are not the tests' concern
        warnings.simplefilter("ignore")
        for name in PRELOAD:
            try:
                __import__(name)
            except ImportError:
                pass
    import pytest  # noqa: F401

    if any(name == "haste" or name.startswith("haste.") for name in sys.modules):
        raise SystemExit("haste was imported before the fork: the mutants would not be seen")
    gc.collect()
    gc.freeze()  # the children's garbage collections skip the preloaded objects


def start_tests(copy: Path, tests: tuple[str, ...], log: Path, threads: int) -> int:
    """Fork a process that runs pytest on ``tests`` in ``copy``, its output in ``log``; its pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 70
    try:
        os.setsid()  # its own process group: a timeout ends whatever the tests started
        os.chdir(copy)
        descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(descriptor, 1)
        os.dup2(descriptor, 2)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        sys.stdout = os.fdopen(1, "w", buffering=1)
        sys.stderr = sys.stdout
        sys.dont_write_bytecode = True  # a mutant is never read back from bytecode
        sys.path[:0] = [str(copy), str(copy / "tests")]
        os.environ["PYTHONPATH"] = os.pathsep.join([str(copy), os.environ.get("PYTHONPATH", "")])
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        import torch

        torch.set_num_threads(threads)
        code = 71
        import haste  # a mutant that breaks the import is killed here

        if not Path(haste.__file__).resolve().is_relative_to(copy.resolve()):
            print(f"haste imported from {haste.__file__}, not from {copy}", flush=True)
            os._exit(72)
        import pytest

        code = int(pytest.main([*PYTEST_OPTIONS, *tests]))
    except BaseException:  # noqa: B036 (a mutant may raise anything, SystemExit included)
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
        finally:
            os._exit(code)


@dataclass
class Running:
    pid: int
    started: float
    log: Path
    slot: int
    job: object = None  # the work item
    restore: tuple | None = None  # (path, original bytes, stat) to put back
    diff: str = ""


def wait_any(running: list[Running], timeout: float) -> tuple[Running, int | None]:
    """The first of ``running`` to end and its exit code (None: ended by the timeout)."""
    while True:
        for run in running:
            pid, status = os.waitpid(run.pid, os.WNOHANG)
            if pid:
                return run, os.waitstatus_to_exitcode(status)
            if time.monotonic() - run.started > timeout:
                try:
                    os.killpg(run.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                os.waitpid(run.pid, 0)
                return run, None
        time.sleep(0.02)


def tail(path: Path, size: int = 4000) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return text[-size:]


# --- one module --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    module: Module
    mutants: int = 0
    killed: int = 0
    timeouts: int = 0
    survivors: list[dict] = field(default_factory=list)  # not judged equivalent
    equivalent: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    pending: int = 0  # not run yet (a --limit run)
    unsampled: int = 0  # left out of a --sample run

    @property
    def score(self) -> str:
        judged = self.mutants - len(self.equivalent)
        return f"{100 * self.killed / judged:.1f}%" if judged else "-"

    def row(self) -> str:
        total = self.mutants + self.unsampled
        cells = [
            f"`{self.module.path}`",
            self.module.kind,
            f"{self.mutants} of {total}, sampled" if self.unsampled else str(self.mutants),
            str(self.killed),
            str(self.timeouts),
            str(len(self.survivors)),
            str(len(self.equivalent)),
            self.score,
            f"{self.seconds / 60:.1f} min",
        ]
        return "| " + " | ".join(cells) + " |"


def run_module(module: Module, copies: list[Path], sessions: Path, config: dict, args) -> Outcome:
    import cosmic_ray.plugins
    from cosmic_ray.commands import init
    from cosmic_ray.mutating import apply_mutation
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

    slug = module.path.replace("/", "_").removesuffix(".py")
    database, stamp = sessions / f"{slug}.sqlite", sessions / f"{slug}.json"
    say = _printer(module.path)
    for copy in copies:  # the mutated module is compiled from its (mutated) source, every time
        cached = Path(importlib.util.cache_from_source(str(copy / module.path)))
        cached.unlink(missing_ok=True)
    current = fingerprint(module, copies[0], args.sample)
    kept = json.loads(stamp.read_text()) if stamp.exists() and database.exists() else {}
    mode = "fresh" if args.fresh else resumption(kept.get("fingerprint"), current)
    seconds = 0.0 if mode == "fresh" else kept.get("seconds", 0.0)
    say(MODES[mode])
    if mode == "fresh":
        database.unlink(missing_ok=True)
    started = time.monotonic()

    def save(finished: bool = False) -> None:
        # survivors run again are recorded under the old fingerprint until all of them have run:
        # an interrupted run then starts them over rather than keep a verdict of the old tests
        recorded = kept["fingerprint"] if mode == "survivors" and not finished else current
        record = {"fingerprint": recorded, "seconds": seconds + time.monotonic() - started}
        stamp.write_text(json.dumps(record, indent=1))

    with use_db(str(database), WorkDB.Mode.create) as db:
        again = []
        if mode == "fresh":
            cwd = os.getcwd()
            os.chdir(copies[0])  # cosmic-ray records the module's path as given: relative
            try:
                init([Path(module.path)], db, {})
            finally:
                os.chdir(cwd)
            skipped = WorkResult(output="operator left out", worker_outcome=WorkerOutcome.SKIPPED)
            for item in db.pending_work_items:
                if not kept_operator(item.mutations[0].operator_name, config):
                    db.set_result(item.job_id, skipped)
            kept_items = sorted(db.pending_work_items, key=lambda item: item.job_id)
            if args.sample is not None and len(kept_items) > args.sample:
                # a module too large to run whole within the time: a seeded uniform sample of its
                # mutants estimates the score; the rest are recorded as not sampled, never as killed
                chosen = set(random.Random(module.path).sample(range(len(kept_items)), args.sample))
                unsampled = WorkResult(output=UNSAMPLED, worker_outcome=WorkerOutcome.SKIPPED)
                for index, item in enumerate(kept_items):
                    if index not in chosen:
                        db.set_result(item.job_id, unsampled)
        elif mode == "survivors":
            again = [item for item, result in db.completed_work_items if result.test_outcome == "survived"]
        save()

        pending = sorted(
            [*db.pending_work_items, *again], key=lambda item: tuple(item.mutations[0].start_pos)
        )
        pending.reverse()  # popped from the end: in source order
        timeout = 0.0
        if pending:  # baseline: the selection passes on the unmutated copy; its time sets the timeout
            log = sessions / f"{slug}.baseline.log"
            began = time.monotonic()
            pid = start_tests(copies[0], module.tests, log, args.threads)
            _, code = wait_any([Running(pid, began, log, 0)], 3600)
            baseline = time.monotonic() - began
            if code != 0:
                raise SystemExit(f"{module.path}: the tests fail unmutated (exit {code}):\n{tail(log)}")
            timeout = max(config["timeout"]["minimum"], config["timeout"]["factor"] * baseline)
            say(f"baseline {baseline:.1f} s, timeout {timeout:.0f} s")
        if args.limit is not None:
            pending = pending[-args.limit :]
        say(f"{len(pending)} mutants to run")

        free, running, done = list(range(len(copies))), [], 0
        try:
            while pending or running:
                while pending and free:
                    item = pending.pop()
                    slot = free.pop()
                    spec = item.mutations[0]
                    path = copies[slot] / spec.module_path
                    before, status = path.read_bytes(), path.stat()
                    operator = cosmic_ray.plugins.get_operator(spec.operator_name)(**spec.operator_args)
                    original, mutated = apply_mutation(path, operator, spec.occurrence)
                    if mutated is None:
                        db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.NO_TEST))
                        _restore(path, before, status)
                        free.append(slot)
                        continue
                    try:  # Python refuses it (``**`` made ``*`` in a dict display): every import fails
                        compile(mutated, str(path), "exec")
                    except SyntaxError as error:
                        _restore(path, before, status)
                        free.append(slot)
                        diff = diff_text(original, mutated, str(spec.module_path))
                        refused = f"does not compile: {error}"
                        db.set_result(
                            item.job_id,
                            WorkResult(
                                worker_outcome=WorkerOutcome.NORMAL,
                                output=refused,
                                test_outcome=TestOutcome.KILLED,
                                diff=diff,
                            ),
                        )
                        done += 1
                        continue
                    log = sessions / f"{slug}.{slot}.log"
                    pid = start_tests(copies[slot], module.tests, log, args.threads)
                    diff = diff_text(original, mutated, str(spec.module_path))
                    restore = (path, before, status)
                    running.append(Running(pid, time.monotonic(), log, slot, item, restore, diff))
                if not running:  # the last ones did not compile
                    continue
                run, code = wait_any(running, timeout)
                running.remove(run)
                _restore(*run.restore)
                free.append(run.slot)
                output = "timeout" if code is None else tail(run.log)
                outcome = TestOutcome.SURVIVED if code == 0 else TestOutcome.KILLED
                # a mutant that breaks importing the package fails collection: pytest then finds no
                # test of the selection's node ids (exit 4), a kill like any failed import
                refused_import = code == 4 and "ERROR collecting" in run.log.read_text(errors="replace")
                if code in (4, 5, 72) and not refused_import:  # usage error, no test ran, wrong haste
                    raise SystemExit(f"{module.path}: the test run is broken (exit {code}):\n{output}")
                result = WorkResult(
                    worker_outcome=WorkerOutcome.NORMAL, output=output, test_outcome=outcome, diff=run.diff
                )
                db.set_result(run.job.job_id, result)
                done += 1
                if done % 25 == 0 or not (pending or running):
                    save()
                    say(f"{done} mutants run, {time.monotonic() - started:.0f} s")
        finally:
            for run in running:
                try:
                    os.killpg(run.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                os.waitpid(run.pid, 0)
                _restore(*run.restore)
        save(finished=not running and not pending)
        outcome = summarise(module, db.completed_work_items, load_equivalents())
        outcome.pending = db.num_work_items - db.num_results
    outcome.seconds = seconds + time.monotonic() - started
    return outcome


def _restore(path: Path, contents: bytes, status: os.stat_result) -> None:
    path.write_bytes(contents)
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))  # numba's cache index stays valid


def _printer(prefix: str):
    def emit(message: str) -> None:
        print(f"[{prefix}] {message}", flush=True)

    return emit


def summarise(module: Module, completed, equivalents: list[dict]) -> Outcome:
    outcome = Outcome(module)
    known = {(e["module"], e["function"], e["original"], e["mutant"]): e for e in equivalents}
    for item, result in completed:
        if result.worker_outcome != "normal":  # left out, not sampled, or no mutation at that place
            outcome.unsampled += result.output == UNSAMPLED
            continue
        spec = item.mutations[0]
        outcome.mutants += 1
        if result.test_outcome != "survived":
            outcome.killed += 1
            outcome.timeouts += result.output == "timeout"
            continue
        key = mutant_key(module.path, spec.definition_name, result.diff or "")
        entry = {
            "module": module.path,
            "function": key[1],
            "line": spec.start_pos[0],
            "operator": spec.operator_name.removeprefix("core/"),
            "original": key[2],
            "mutant": key[3],
        }
        if key in known:
            outcome.equivalent.append(entry | {"reason": known[key]["reason"]})
        else:
            outcome.survivors.append(entry)
    return outcome


# --- docs/mutation.md --------------------------------------------------------------------------------


def section(text: str, name: str) -> tuple[int, int]:
    opening, closing = MARKERS[name]
    start, end = text.find(opening), text.find(closing)
    if start < 0 or end < start:
        raise SystemExit(f"{DOCUMENT.name} lacks the markers {opening} ... {closing}")
    return start + len(opening) + 1, end


def replace_section(text: str, name: str, body: str) -> str:
    start, end = section(text, name)
    return text[:start] + body + text[end:]


def table_rows(text: str) -> dict[str, str]:
    start, end = section(text, "table")
    rows = {}
    for line in text[start:end].splitlines():
        match = re.match(r"\|\s*`([^`]+)`", line)
        if match:
            rows[match.group(1)] = line
    return rows


def survivor_lines(text: str) -> dict[str, list[str]]:
    start, end = section(text, "survivors")
    kept: dict[str, list[str]] = {}
    for line in text[start:end].splitlines():
        match = re.match(r"- `([^`]+)`", line)
        if match:
            kept.setdefault(match.group(1), []).append(line)
    return kept


def _code(text: str) -> str:
    return f"``{text}``" if "`" in text else f"`{text}`"


def write_document(modules: dict[str, Module], outcomes: list[Outcome], equivalents: list[dict]) -> None:
    text = DOCUMENT.read_text()
    rows, survivors = table_rows(text), survivor_lines(text)
    for outcome in outcomes:
        rows[outcome.module.path] = outcome.row()
        survivors[outcome.module.path] = [
            f"- `{s['module']}` line {s['line']} (`{s['function']}`, {s['operator']}): "
            f"{_code(s['original'])} → {_code(s['mutant'] or '(removed)')}"
            for s in outcome.survivors
        ]
    lines = [HEADER, "|" + "---|" * HEADER.count(" | ") + "---|"]
    for path, module in modules.items():
        not_run = f"| `{path}` | {module.kind} | {NOT_RUN}: `{module.command}` |" + " |" * 6
        lines.append(rows.get(path, not_run))
    text = replace_section(text, "table", "\n".join(lines) + "\n")
    listed = [line for path in modules for line in survivors.get(path, [])]
    text = replace_section(text, "survivors", "\n".join(listed) + "\n" if listed else "None.\n")
    judged = [
        f"- `{e['module']}` (`{e['function']}`): {_code(e['original'])} → "
        f"{_code(e['mutant'] or '(removed)')}. {e['reason']}"
        for e in equivalents
    ]
    text = replace_section(text, "equivalent", "\n".join(judged) + "\n" if judged else "None.\n")
    DOCUMENT.write_text(text)


# --- command line ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python scripts/mutation.py", description=__doc__.split("\n")[0], allow_abbrev=False
    )
    parser.add_argument("modules", nargs="*", help="modules to mutate (default: all of mutation.toml)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested at once, each in its own copy")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per test process")
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()) / "haste-mutation")
    parser.add_argument("--fresh", action="store_true", help="discard the kept sessions and start over")
    parser.add_argument("--limit", type=int, default=None, help="run at most this many mutants per module")
    parser.add_argument(
        "--sample", type=int, default=None, help="run a seeded sample of this many mutants per module"
    )
    parser.add_argument("--no-write", action="store_true", help="leave docs/mutation.md as it is")
    parser.add_argument("--list", action="store_true", help="print the modules and their tests, run nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = tomllib.loads(CONFIG.read_text())
    modules = load_modules(config)
    chosen = args.modules or list(modules)
    unknown = [path for path in chosen if path not in modules]
    if unknown:
        raise SystemExit(f"not in {CONFIG.name}: {', '.join(unknown)}; known: {', '.join(modules)}")
    if args.list:
        for path in chosen:
            print(f"{path} ({modules[path].kind}): {' '.join(modules[path].tests)}")
        return 0
    if importlib.util.find_spec("cosmic_ray") is None:
        raise SystemExit("cosmic-ray is not installed: pip install cosmic-ray")
    args.threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    preload()
    scratch = args.scratch.resolve()
    if scratch.is_relative_to(ROOT):
        raise SystemExit("--scratch must lie outside the checkout: the mutants are written there")
    copies = [scratch / f"copy{slot}" for slot in range(args.jobs)]
    for copy in copies:
        make_copy(ROOT, copy)
    sessions = scratch / "sessions"
    sessions.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for path in chosen:
        outcome = run_module(modules[path], copies, sessions, config, args)
        outcomes.append(outcome)
        print(outcome.row(), flush=True)
        for survivor in outcome.survivors:
            print(f"  survived: line {survivor['line']} {survivor['original']!r} -> {survivor['mutant']!r}")
        matched = {(e["function"], e["original"], e["mutant"]) for e in outcome.equivalent}
        for entry in load_equivalents() if not outcome.pending else []:
            key = (entry["function"], entry["original"], entry["mutant"])
            if entry["module"] == path and key not in matched:
                print(f"  stale entry of {EQUIVALENT.name} (no surviving mutant matches it): {entry}")
        if outcome.pending:
            print(f"  {outcome.pending} mutants not run yet: docs/mutation.md keeps this module's row")
        elif not args.no_write:  # after every module: a later failure keeps it
            write_document(modules, [o for o in outcomes if not o.pending], load_equivalents())
    return 0


if __name__ == "__main__":
    sys.exit(main())
