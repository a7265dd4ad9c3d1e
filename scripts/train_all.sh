#!/usr/bin/env bash
# Train the six CIFAR-10 stand-ins one after another and ship each finished one (weights/ + manifest).
# Resumable: run it again after an interruption and every model continues from its last epoch.
#   HASTE_RUNS   where run folders live (default ~/.cache/haste/runs)
#   EPOCHS       epochs per model (default 30)
#   MODELS       space-separated subset, e.g. "resnet34 vgg19_bn"
#   BF16         1: bf16 autocast (faster on CPUs with AMX/AVX512-BF16, slower on AVX2 only; see README)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${HASTE_RUNS:-$HOME/.cache/haste/runs}
DATA=$(realpath -m "${HASTE_DATA:-../shared/data/cifar10-jpeg}")
EPOCHS=${EPOCHS:-30}
MODELS=${MODELS:-"resnet18 resnet34 vgg11_bn vgg13_bn vgg16_bn vgg19_bn"}
for arch in $MODELS; do
  run="$RUNS/cifar10-$arch"
  python -m haste train --model "cifar10/$arch" --data "$DATA" --out "$run" --epochs "$EPOCHS" ${BF16:+--bf16}
  python -m haste export --run "$run"
done
