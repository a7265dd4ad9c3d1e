#!/usr/bin/env bash
# Main job: a quick HASTE evaluation on CIFAR-10 (dense baseline and a sweep over L).
#   ./run_all.sh            1,000 test images
#   ./run_all.sh --full     the whole 10,000-image test split
# Uses the shipped stand-in checkpoint when there is one, a randomly initialised network otherwise
# (the FLOPs are then meaningful, the accuracy is not). Results go to results/quick_eval.json.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/install.sh
DATA=${HASTE_DATA:-../shared/data/cifar10-jpeg}
MODEL=${HASTE_MODEL:-cifar10/resnet34}
LIMIT=(--limit 1000)
[[ "${1:-}" == "--full" ]] && LIMIT=()
WEIGHTS=default
if ! python -c "import sys; from haste.models.weights import read_manifest; sys.exit('$MODEL' not in read_manifest())"; then
  echo "note: no shipped checkpoint for $MODEL yet; evaluating a randomly initialised network" >&2
  WEIGHTS=random
fi
mkdir -p results
python -m haste eval --model "$MODEL" --weights "$WEIGHTS" --data "$DATA" --baseline \
  --hyperplanes 10 12 14 16 18 "${LIMIT[@]}" --json results/quick_eval.json
