#!/usr/bin/env bash
# The reproduction: runs every notebook through papermill, in order, and regenerates results/.
#   ./run_all.sh --quick   minutes: few images, few L, one seed (what CI runs); writes results/quick/
#   ./run_all.sh           the full reproduction (hours on a 2-core CPU); writes results/
#   ./run_all.sh [--quick] 01_cifar10_sweep 03_tradeoff_figure   only the named notebooks, in order
#   --data PATH            CIFAR-10 (default: $HASTE_DATA, else ../shared/data/cifar10-jpeg)
# Quick mode's parameters are notebooks/quick/<name>.yaml. Executed notebooks go to executed/ (the
# sources in notebooks/ stay clean); cell output streams to the terminal. Stops at the first error.
set -euo pipefail
cd "$(dirname "$0")"
args=()
names=()
while (($#)); do
  case "$1" in
    --quick) args+=(--quick) ;;
    --data) args+=(--data "$2"); shift ;;
    --data=*) args+=(--data "${1#--data=}") ;;
    -*) echo "error: unknown option $1 (see the top of run_all.sh)" >&2; exit 2 ;;
    *) [[ -f "notebooks/$1.ipynb" ]] || { echo "error: no notebook notebooks/$1.ipynb" >&2; exit 2; }
       names+=("$1") ;;
  esac
  shift
done
bash scripts/install.sh
python -m haste.repro.notebooks "${args[@]}" "${names[@]}"
echo "done: results in $PWD/results$([[ " ${args[*]} " == *" --quick "* ]] && echo /quick)"
