#!/usr/bin/env bash
# The reproduction: runs every notebook through papermill, in order, and regenerates results/.
#   ./run_all.sh --quick   minutes: few images, few L, one seed (what CI runs); writes results/quick/
#   ./run_all.sh           the full reproduction (hours on a 2-core CPU); writes results/
#   ./run_all.sh [--quick] 01_cifar10_sweep 03_tradeoff_figure   only the named notebooks, in order
#   --data PATH            CIFAR-10 (default: $HASTE_DATA, else ../shared/data/cifar10-jpeg beside
#                          the repository); checked before the first notebook
# Quick mode's parameters are notebooks/quick/<name>.yaml. Executed notebooks go to executed/ (the
# sources in notebooks/ stay clean); cell output and progress bars stream to the terminal. Stops at
# the first error.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
args=()
names=()
while (($#)); do
  case "$1" in
    --quick) args+=(--quick) ;;
    # relative to where the command was typed, not to the repository
    --data) (($# > 1)) || { echo "error: --data needs a path" >&2; exit 2; }
            args+=(--data "$(realpath -m -- "$2")"); shift ;;
    --data=*) args+=(--data "$(realpath -m -- "${1#--data=}")") ;;
    -*) echo "error: unknown option $1 (see the top of run_all.sh)" >&2; exit 2 ;;
    *) [[ -f "$here/notebooks/$1.ipynb" ]] || { echo "error: no notebook notebooks/$1.ipynb" >&2; exit 2; }
       names+=("$1") ;;
  esac
  shift
done
cd "$here"
bash scripts/install.sh
python -m haste.repro.notebooks "${args[@]}" "${names[@]}"
echo "done: results in $PWD/results$([[ " ${args[*]} " == *" --quick "* ]] && echo /quick)"
