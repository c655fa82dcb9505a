#!/usr/bin/env bash
# Run THERE, on a lent GPU machine (device tool, with `carry: [".whl"]` from
# bench/device_wheels.sh): the GPU figures for README.md in one call of about 6 minutes on an
# H100. SD 1.5's architecture with random weights in fp16, the worker path against bare
# diffusers, batch 1 and 4, batch-invariant on and off; logs go to $OUT. The database is the
# embedded PostgreSQL (pgserver), as the machine has no server. Other arguments replace the
# defaults, e.g. `bench/device_run.sh --device cpu --arch tiny --steps 4 --images 4 --rounds 1`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ -d .whl ]; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1 STUDIO_VAR_DIR=${STUDIO_VAR_DIR:-/tmp/studio-var}
out=${OUT:-/tmp}
args=("$@")
if [ ${#args[@]} -eq 0 ]; then
    args=(--device cuda --arch sd15 --size 512 --steps 20 --images 8 --rounds 2)
fi
"$PYTHON" bench/generation.py "${args[@]}" --models-dir /tmp/bench-models 2>&1 \
    | grep -v ' INFO ' | tee "$out/bench-batched.log"
"$PYTHON" bench/generation.py "${args[@]}" --models-dir /tmp/bench-models --batch-invariant \
    2>&1 | grep -v ' INFO ' | tee "$out/bench-invariant.log"
