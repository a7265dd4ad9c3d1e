#!/usr/bin/env bash
# The reproduction: runs every notebook through papermill, in order, and regenerates results/.
#   ./run_all.sh --quick   minutes: few images, few L, one seed (what CI runs); writes results/quick/
#   ./run_all.sh           the full reproduction (hours on a 2-core CPU); writes results/
#   ./run_all.sh [--quick] 01_cifar10_sweep 03_tradeoff_figure   only the named notebooks, in order
#   ./run_all.sh --prepare makes the inputs that a full run skips without (python -m haste.repro.prepare):
#                          trains the checkpoint-quality series (hours, resumable), imports the Keras
#                          ResNet-50 (needs npm); then run ./run_all.sh again
#   --results-dir DIR      write the CSVs and figures into DIR instead of results/ (then compare:
#                          python -m haste diff results DIR)
#   --data PATH            CIFAR-10 (default: $HASTE_DATA, else ../shared/data/cifar10-jpeg beside
#                          the repository); checked before the first notebook
#   --weights paper        the paper's checkpoints (python -m haste download paper-weights), or a folder
#                          of <arch>.pt files; results go to results/paper-weights/ (default: stand-in)
#   --device DEVICE        cpu, cuda, cuda:1, ... (default: a GPU when one is present)
#   --shard K/N            only the sweeps, every N-th measurement from the K-th, into the result cache
#                          (e.g. one task of a Slurm array); a run without --shard then writes the CSVs
# Quick mode's parameters are notebooks/quick/<name>.yaml. Executed notebooks go to executed/ (the
# sources in notebooks/ stay clean); cell output and progress bars stream to the terminal. A notebook
# whose inputs need a preparation not done yet is skipped with one line saying what to run, and its
# committed results stay; the run ends with a summary (ran, skipped and why, wall time of each) and
# stops at the first error.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
args=()
names=()
weights=stand-in
results=$here/results
prepare=false
while (($#)); do
  case "$1" in
    --quick) args+=(--quick) ;;
    --prepare) prepare=true ;;
    # relative to where the command was typed, not to the repository
    --data) (($# > 1)) || { echo "error: --data needs a path" >&2; exit 2; }
            args+=(--data "$(realpath -m -- "$2")"); shift ;;
    --data=*) args+=(--data "$(realpath -m -- "${1#--data=}")") ;;
    --results-dir) (($# > 1)) || { echo "error: --results-dir needs a path" >&2; exit 2; }
            results=$(realpath -m -- "$2"); shift ;;
    --results-dir=*) results=$(realpath -m -- "${1#--results-dir=}") ;;
    --weights|--device|--shard) (($# > 1)) || { echo "error: $1 needs a value" >&2; exit 2; }
            set -- "$1=$2" "${@:3}"; continue ;;
    --weights=*) weights=${1#--weights=}
                 case $weights in stand-in|default|paper) ;; *) weights=$(realpath -m -- "$weights") ;; esac
                 args+=(--weights "$weights") ;;
    --device=*|--shard=*) args+=("$1") ;;
    -*) echo "error: unknown option $1 (see the top of run_all.sh)" >&2; exit 2 ;;
    *) [[ -f "$here/notebooks/$1.ipynb" ]] || { echo "error: no notebook notebooks/$1.ipynb" >&2; exit 2; }
       names+=("$1") ;;
  esac
  shift
done
cd "$here"
bash scripts/install.sh
if $prepare; then
  exec python -m haste.repro.prepare
fi
python -m haste.repro.notebooks --results-dir "$results" "${args[@]}" "${names[@]}"
if [[ $weights != stand-in && $weights != default ]]; then results+=/paper-weights; fi
echo "done: results in $results$([[ " ${args[*]} " == *" --quick "* ]] && echo /quick)"
