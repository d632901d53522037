#!/usr/bin/env bash
# Train configs/segrefiner/segrefiner_base_gpu.py on one GPU for a fixed time budget (about 8
# minutes of iterations, 9 in all with start-up and export) and leave the exported checkpoint
# (float16 weights + model config) and the training log under $OUT.
#
#   OUT=/tmp/out bash tools/gpu_train.sh [tools/train.py arguments, e.g. --cfg-options ...]
#
# Environment:
#   OUT                where the results go (default work_dirs/gpu_out): train.log and
#                      segrefiner_base_gpu.pth, or, when that is over 15 MiB,
#                      segrefiner_base_gpu.pth.part00, .part01, ... (join them with
#                      `cat segrefiner_base_gpu.pth.part* > segrefiner_base_gpu.pth`)
#   REFINER_DATA_ROOT  folder with people/ and hair/ (default ../shared/data, else shared/data)
#   WORK_DIR           the run's checkpoints and logs (default /tmp/segrefiner_gpu_work)
#   PYTHON             interpreter (default python3)
# Without the OpenMMLab stack installed, wheels in .whl/ (mmengine, mmcv, ...) are installed
# into /tmp/segrefiner_site first.
# A machine that receives only the working tree (not ../shared) needs a down-scaled copy of
# the data in a git-ignored folder carried along (people + hair at 320 px: about 34 MB):
#   echo /.gpu_data/ >> .git/info/exclude
#   python tools/pack_gpu_data.py ../shared/data .gpu_data
#   ... then there: REFINER_DATA_ROOT=.gpu_data OUT=$OUT bash tools/gpu_train.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
OUT=${OUT:-work_dirs/gpu_out}
WORK_DIR=${WORK_DIR:-/tmp/segrefiner_gpu_work}
CONFIG=configs/segrefiner/segrefiner_base_gpu.py
NAME=$(basename "$CONFIG" .py)

if [ -z "${REFINER_DATA_ROOT:-}" ]; then
    for dir in ../shared/data shared/data; do
        if [ -d "$dir/people" ]; then REFINER_DATA_ROOT=$dir; break; fi
    done
fi
if [ ! -d "${REFINER_DATA_ROOT:-}/people" ] || [ ! -d "$REFINER_DATA_ROOT/hair" ]; then
    echo "gpu_train.sh: no people/ and hair/ data; set REFINER_DATA_ROOT" >&2
    exit 2
fi
export REFINER_DATA_ROOT

if ! "$PYTHON" -c 'import mmengine, mmcv' 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --upgrade \
        --target /tmp/segrefiner_site .whl/*.whl
    export PYTHONPATH=/tmp/segrefiner_site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1

mkdir -p "$OUT"
start=$(date +%s)
"$PYTHON" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" "$@" 2>&1 | tee "$OUT/train.log"
ckpt=$(cat "$WORK_DIR/last_checkpoint")
# The work dir holds the merged config (command-line overrides included): export with it.
"$PYTHON" tools/export_checkpoint.py "$WORK_DIR/$NAME.py" "$ckpt" "$OUT/$NAME.pth" \
    --note "tools/gpu_train.sh $*" 2>&1 | tee -a "$OUT/train.log"
if [ "$(stat -c %s "$OUT/$NAME.pth")" -gt $((15 * 1024 * 1024)) ]; then
    split -b 15M -d "$OUT/$NAME.pth" "$OUT/$NAME.pth.part"
    rm "$OUT/$NAME.pth"
fi
echo "gpu_train.sh: done in $(($(date +%s) - start)) s; results in $OUT:" | tee -a "$OUT/train.log"
ls -l "$OUT"
