#!/usr/bin/env bash
# Train the six CIFAR-10 stand-ins one after another and ship each finished one (weights/ + manifest).
# Resumable: run it again after an interruption and every model continues from its last epoch.
#   HASTE_RUNS   where run folders live (default ~/.cache/haste/runs)
#   MODELS       space-separated subset, e.g. "resnet34 vgg19_bn"
#   EPOCHS       epochs per model (default: the recipe's, `python -m haste train --help`)
#   BF16=0       no bf16 autocast (it is on by default; far slower on AVX2-only CPUs, see docs/checkpoints.md)
#   HASTE_DATA   CIFAR-10 (default: ../shared/data/cifar10-jpeg beside the repository; the CLI's rule)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${HASTE_RUNS:-$HOME/.cache/haste/runs}
MODELS=${MODELS:-"resnet18 resnet34 vgg11_bn vgg13_bn vgg16_bn vgg19_bn"}
for arch in $MODELS; do
  run="$RUNS/cifar10-$arch"
  python -m haste train --model "cifar10/$arch" --out "$run" ${EPOCHS:+--epochs "$EPOCHS"} \
    $([[ "${BF16:-1}" == 0 ]] && echo --no-bf16 || echo --bf16)
  python -m haste export --run "$run"
done
