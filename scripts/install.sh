#!/usr/bin/env bash
# Install haste and everything it needs into the current Python (3.10+), idempotently: nothing is
# installed when this checkout is installed already with what pyproject.toml asks for.
set -euo pipefail
cd "$(dirname "$0")/.."
if python scripts/installed.py >/dev/null 2>&1; then
  exit 0
fi
echo "installing haste from $PWD into $(python -c 'import sys; print(sys.prefix)')" >&2
# torch and torchvision first, as a matching pair; pip's plain "torch" may pick a mismatched build.
if ! python -c "import torch, torchvision" >/dev/null 2>&1; then
  python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
fi
python -m pip install --quiet -e ".[notebooks,test]"
