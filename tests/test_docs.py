"""Every code block in README.md and docs/*.md works as written.

```python blocks run, each file's in one interpreter and in order (as a reader pastes them), in a
fresh folder with a private cache and a tiny synthetic CIFAR-10 as ``HASTE_DATA``. ```bash blocks
are not run (they take minutes to hours): every ``python -m haste ...`` line must parse with the
CLI's own parser, and every script, module and notebook a line names must exist. A block preceded
by ``<!-- docs-test: skip REASON -->`` is reported as skipped with that reason, never silently.
"""

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from test_data import make_tree

from haste.repro import cli, notebooks

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```\s*(\S*)\s*$")
SKIP = re.compile(r"^<!--\s*docs-test:\s*skip\s+(.+?)\s*-->$")


def code_blocks(path: Path) -> list[dict]:
    """The fenced blocks of a Markdown file: language, first code line (1-based), code, skip reason."""
    blocks, lines = [], path.read_text().splitlines()
    index = 0
    while index < len(lines):
        start = FENCE.match(lines[index].strip())
        if not start or not start.group(1):
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].strip() == "```")
        previous = next((line.strip() for line in reversed(lines[:index]) if line.strip()), "")
        skip = SKIP.match(previous)
        blocks.append(
            {
                "language": start.group(1),
                "line": index + 2,
                "code": "\n".join(lines[index + 1 : end]),
                "skip": skip.group(1) if skip else None,
            }
        )
        index = end + 1
    return blocks


def blocks_of(language: str):
    found = []
    for path in DOCS:
        for block in code_blocks(path):
            if block["language"] == language:
                name = f"{path.relative_to(ROOT)}:{block['line']}"
                marks = [pytest.mark.skip(reason=block["skip"])] if block["skip"] else []
                found.append(pytest.param(path, block, id=name, marks=marks))
    return found


def test_the_readme_has_code_to_check():
    languages = [block["language"] for block in code_blocks(ROOT / "README.md")]
    assert "python" in languages and "bash" in languages  # an extraction that finds nothing fails


# --- python: run -------------------------------------------------------------------------------

RUNNER = """
import json, sys
namespace = {"__name__": "__main__"}
for name, code in json.load(open(sys.argv[1])):
    print(f"--- {name}", flush=True)
    exec(compile(code, name, "exec"), namespace)
"""


@pytest.mark.parametrize("path", [p for p in DOCS if any(b["language"] == "python" for b in code_blocks(p))])
def test_python_blocks_run_as_written(path, tmp_path):
    blocks = [b for b in code_blocks(path) if b["language"] == "python"]
    runnable = [(f"{path.relative_to(ROOT)}:{b['line']}", b["code"]) for b in blocks if not b["skip"]]
    skipped = [f"{path.relative_to(ROOT)}:{b['line']} ({b['skip']})" for b in blocks if b["skip"]]
    (tmp_path / "blocks.json").write_text(json.dumps(runnable))
    work = tmp_path / "work"  # not the repository: the blocks must work from any folder
    work.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "HASTE_CACHE": str(tmp_path / "cache"),
        "HASTE_DATA": str(make_tree(tmp_path / "cifar10", per_class=2)),
        "MPLBACKEND": "Agg",
    }
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(tmp_path / "blocks.json")],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    if skipped:  # reported, not silent
        pytest.skip(f"ran {len(runnable)} blocks; skipped by their marker: {', '.join(skipped)}")


# --- bash: parse and check ---------------------------------------------------------------------


def command_lines(code: str) -> list[list[str]]:
    """The block's commands as tokens: continuations joined, comments and VAR=value prefixes dropped."""
    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        tokens = shlex.split(line, comments=True)
        while tokens and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", tokens[0]):
            tokens = tokens[1:]
        if tokens:
            commands.append(tokens)
    return commands


def parses(parser, arguments: list[str]) -> None:
    try:
        parser.parse_args(arguments)
    except SystemExit as exit_info:  # --help exits 0; an error exits 2 after printing it
        assert exit_info.code == 0, f"{parser.prog} {shlex.join(arguments)} does not parse"


def check_command(tokens: list[str]) -> None:
    program, arguments = tokens[0], tokens[1:]
    if program in ("python", "python3") and arguments[:1] == ["-m"]:
        module, arguments = arguments[1], arguments[2:]
        if module == "haste":
            parses(cli.build_parser(), arguments)
        elif module == "haste.repro.notebooks":
            parses(notebooks.build_parser(), arguments)
            notebooks.check_names(notebooks.build_parser().parse_args(arguments).names)
        else:
            assert module == "pip" or importlib.util.find_spec(module), f"no module {module}"
    elif program in ("python", "python3", "bash", "sh") and arguments:
        assert (ROOT / arguments[0]).is_file(), f"no file {arguments[0]}"
    elif program.startswith("./") or re.match(r"^[\w./-]+\.(sh|py)$", program):  # a script run directly
        assert (ROOT / program).is_file(), f"no file {program}"
        if program == "./run_all.sh":
            taking_values = ("--data", "--weights", "--device", "--shard", "--results-dir")  # --data PATH
            values = {i + 1 for i, a in enumerate(arguments) if a in taking_values}
            names = [a for i, a in enumerate(arguments) if not a.startswith("-") and i not in values]
            for name in names:
                assert (ROOT / "notebooks" / f"{name}.ipynb").is_file(), f"no notebook {name}"


@pytest.mark.parametrize("path,block", blocks_of("bash"))
def test_bash_blocks_name_real_commands(path, block):
    for tokens in command_lines(block["code"]):
        check_command(tokens)


def test_the_bash_check_can_fail():
    with pytest.raises(AssertionError, match="does not parse"):
        check_command(["python", "-m", "haste", "eval", "--model", "x", "--hyperplanes", "1.5"])
    with pytest.raises(AssertionError, match="no file"):
        check_command(["bash", "scripts/nope.sh"])
    with pytest.raises(AssertionError, match="no file"):
        check_command(["scripts/nope.sh", "DATA"])
    with pytest.raises(AssertionError, match="no notebook"):
        check_command(["./run_all.sh", "--quick", "--data", "/somewhere", "09_nope"])
    assert command_lines("A=1 python -m haste eval \\\n  --model m  # note\n\n") == [
        ["python", "-m", "haste", "eval", "--model", "m"]
    ]
