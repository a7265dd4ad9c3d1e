#!/usr/bin/env bash
# Install haste and everything it needs into the current Python (3.10+), idempotently.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --upgrade --quiet pip >/dev/null 2>&1 || true
# torch and torchvision first, as a matching pair; pip's plain "torch" may pick a mismatched build.
if ! python -c "import torch, torchvision" >/dev/null 2>&1; then
  python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
fi
python -m pip install --quiet -e ".[notebooks,test]"
