#!/bin/bash
# The script that made run.log on the lent H100 (kept as the record of what ran; it expects
# the test split under .gpu/cifar10-jpeg, fvcore and its pure-python dependencies as wheels in
# .whl/, and the commit in .gpu/commit). The run at 74b6719 also timed the eval path with the
# CPU chunk size:
#   python3 -c "import runpy, sys, haste.functional as f; sys.path.insert(0, 'benchmarks');
#     f.ACCELERATOR_CHUNK_BYTES = f.CHUNK_BYTES; sys.argv = ['eval_speed.py'] + sys.argv[1:];
#     runpy.run_path('benchmarks/eval_speed.py', run_name='__main__')" \
#     --device cuda --data .gpu/cifar10-jpeg --rounds 3 --blocks 1
# One device run: the speed benchmarks on the GPU. DEVICE=cpu QUICK=--quick for a dry run here.
DEVICE=${DEVICE:-cuda}; OUT=${OUT:-/tmp/out}; mkdir -p "$OUT/speed_cuda"
LOG="$OUT/log.txt"
exec > >(tee -a "$LOG") 2>&1
if [ -d .whl ] && [ "$DEVICE" = cuda ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 HASTE_CACHE=/tmp/haste-cache TQDM_MININTERVAL=30
export HASTE_COMMIT=$(cat .gpu/commit)
date; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null
python3 -c "import torch, torchvision, fvcore, numba, haste; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'numba', numba.__version__, 'cuda', torch.cuda.is_available())"
DATA=.gpu/cifar10-jpeg
speed() { echo "== speed.py $1"; date; timeout $2 python3 benchmarks/speed.py $QUICK --device $DEVICE --data $DATA --parts $1 --out "$OUT/speed_cuda"; }
echo "== eval_speed eval path"; date
timeout 80 python3 benchmarks/eval_speed.py --device $DEVICE --data $DATA --rounds 5 ${BATCH:+--batch-size $BATCH}
speed "cifar imagenet" 120
echo "== eval_speed compressed path"; date
timeout 80 python3 benchmarks/eval_speed.py --device $DEVICE --data $DATA --rounds 3 --execution compressed ${BATCH:+--batch-size $BATCH}
speed trained 100
speed layers 100
echo "== profile"; timeout 60 python3 benchmarks/profile_paths.py --device cuda --data $DATA 2>&1 | grep -v "^W11\|USDT" > "$OUT/profile.txt"
date; ls -la "$OUT/speed_cuda"
