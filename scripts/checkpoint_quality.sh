#!/usr/bin/env bash
# Checkpoints of one architecture trained for other schedules than the shipped 30 epochs (the
# shipped recipe otherwise), for 09_checkpoint_quality. Resumable: run it again after an
# interruption and every run continues from its last epoch. For each schedule it trains, exports
# the float16 file into its own weights folder (outside the repository: these are not shipped) and
# records the file's SHA-256, test accuracy, the exact command and the training log under
# results/checkpoint_quality/.
#   MODEL   default cifar10/resnet18        EPOCHS  default "1 2 3"
#   PRECISION  default --bf16; --no-bf16 on CPUs without AVX512-BF16/AMX (bf16 is far slower there)
#   OUT     default $HASTE_CACHE/checkpoint-quality (~/.cache/haste/checkpoint-quality)
#   HASTE_DATA  CIFAR-10 (default ../shared/data/cifar10-jpeg)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-cifar10/resnet18}
ARCH=${MODEL#*/}
EPOCHS=${EPOCHS:-"1 2 3"}
PRECISION=${PRECISION:---bf16}
OUT=${OUT:-${HASTE_CACHE:-$HOME/.cache/haste}/checkpoint-quality}
DATA=$(realpath -m "${HASTE_DATA:-../shared/data/cifar10-jpeg}")
RECORD=results/checkpoint_quality
mkdir -p "$RECORD/logs"
for epochs in $EPOCHS; do
  run="$OUT/runs/$ARCH-e$epochs"
  command="python -m haste train --model $MODEL --data DATA --out RUN --epochs $epochs $PRECISION"
  python -m haste train --model "$MODEL" --data "$DATA" --out "$run" --epochs "$epochs" "$PRECISION"
  python -m haste export --run "$run" --weights-dir "$OUT/weights/e$epochs" --data "$DATA"
  cp "$run/log.csv" "$RECORD/logs/$ARCH-e$epochs.csv"
  python - "$OUT/weights/e$epochs/manifest.csv" "$MODEL" "$epochs" "$command" "$RECORD/checkpoints.csv" <<'PY'
import sys

import pandas as pd

manifest, model, epochs, command, record = sys.argv[1:]
row = pd.read_csv(manifest, dtype=str).set_index("model").loc[model]
entry = {"model": model, "epochs": int(epochs), "sha256": row.sha256, "test_accuracy": row.test_accuracy,
         "command": command, "train_commit": row.train_commit, "train_hours": row.train_hours,
         "log": f"logs/{model.split('/')[1]}-e{epochs}.csv"}
try:
    table = pd.read_csv(record, dtype=str)
    table = table[~((table.model == model) & (table.epochs == str(epochs)))]
except FileNotFoundError:
    table = pd.DataFrame()
table = pd.concat([table, pd.DataFrame([entry]).astype(str)], ignore_index=True)
table.sort_values(["model", "epochs"], key=lambda c: c.astype(int) if c.name == "epochs" else c).to_csv(record, index=False)
print(entry)
PY
done
