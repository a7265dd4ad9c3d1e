#!/usr/bin/env bash
# The reproduction: runs every notebook through papermill, in order, and regenerates results/.
#   ./run_all.sh --quick   minutes: few images, few L, one seed (what CI runs); writes results/quick/
#   ./run_all.sh           the full reproduction (hours on a 2-core CPU); writes results/
#   ./run_all.sh [--quick] 01_cifar10_sweep 03_tradeoff_figure   only the named notebooks, in order
# Executed notebooks go to executed/ (the sources in notebooks/ stay clean). Stops at the first error.
set -euo pipefail
cd "$(dirname "$0")"
QUICK=False
if [[ "${1:-}" == "--quick" ]]; then QUICK=True; shift; fi
bash scripts/install.sh
DATA=$(realpath -m "${HASTE_DATA:-../shared/data/cifar10-jpeg}")
NOTEBOOKS=(
  01_cifar10_sweep
  02_cifar10_main_table
  03_tradeoff_figure
  04_patch_compression
  05_ablations
  06_imagenet
  07_patch_size
)
if (($#)); then
  for name in "$@"; do
    [[ -f "notebooks/$name.ipynb" ]] || { echo "no notebook notebooks/$name.ipynb" >&2; exit 2; }
  done
  NOTEBOOKS=("$@")
fi
mkdir -p executed
for name in "${NOTEBOOKS[@]}"; do
  echo "== $name (quick=$QUICK)"
  params=(-p quick "$QUICK" -p results_dir "$PWD/results")
  if grep -q '"data = ' "notebooks/$name.ipynb"; then params+=(-p data "$DATA"); fi
  python -m papermill "notebooks/$name.ipynb" "executed/$name.ipynb" --cwd notebooks \
    --progress-bar "${params[@]}"
done
echo "done: results in $PWD/results$([[ $QUICK == True ]] && echo /quick)"
