#!/usr/bin/env bash
# Train several CIFAR-10 stand-ins side by side on one GPU (the recipe's defaults, bf16 autocast included),
# then write each finished run as a slim float16 file (`python -m haste slim`), small enough to copy back
# from a lent machine.
# Ship a slim file here with `python -m haste export --run FILE --data ../shared/data/cifar10-jpeg`.
#   scripts/train_gpu.sh DATA OUT_DIR "resnet34 vgg19_bn"
#   EPOCHS (default: the recipe's); LIMIT: use only N training images (smoke tests)
# Set HASTE_COMMIT when the tree was copied without .git, so the runs record their code.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=$(realpath "$1")
OUT_DIR=$(realpath -m "$2")
MODELS=${3:-"resnet18 resnet34 vgg11_bn vgg13_bn vgg16_bn vgg19_bn"}
mkdir -p "$OUT_DIR"
# decode the JPEGs once, into $HASTE_CACHE; the runs then load the cached tensors
python -c "import sys; from haste.zoo.data import load_cifar10 as load; [load(sys.argv[1], s) for s in ('train', 'test')]" "$DATA"
pids=()
for arch in $MODELS; do
  python -m haste train --model "cifar10/$arch" --data "$DATA" --out "$OUT_DIR/cifar10-$arch" \
    ${EPOCHS:+--epochs "$EPOCHS"} ${LIMIT:+--limit "$LIMIT"} >"$OUT_DIR/cifar10-$arch.log" 2>&1 &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
for arch in $MODELS; do
  tail -n 1 "$OUT_DIR/cifar10-$arch.log"
  python -m haste slim --run "$OUT_DIR/cifar10-$arch" --out "$OUT_DIR/cifar10-$arch.slim.pt" || failed=1
done
exit "$failed"
