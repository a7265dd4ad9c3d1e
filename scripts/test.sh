#!/usr/bin/env bash
# The test command of the README: install what is needed, lint, run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
python -m ruff check .
python -m ruff format --check .
python -m mypy
python -m pytest -q "$@"
