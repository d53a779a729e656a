#!/usr/bin/env bash
# The one-call device check (bench/gpu.py says what it measures).
#
#   bench/gpu.sh [--wheels DIR] [--device cuda|cpu] [bench/gpu.py's options]
#
# --wheels DIR: first pip-installs every wheel in DIR (onnxruntime-gpu, polars, click,
# onnx, onnxscript and what they need, carried to a host that cannot reach PyPI) with no
# index, into the Python on PATH (or $PYTHON), whose torch (the CUDA build) stays; aerec
# itself runs from this checkout. On a GPU host it fits in 8 minutes; `--device cpu
# --users 20000 --items 5000 --compare 2000 --train-users 2000` is its dry run anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if [[ ${1:-} == --wheels ]]; then
    "$python" -m pip install -q --no-index --find-links "$2" "$2"/*.whl
    shift 2
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
exec timeout 480 "$python" bench/gpu.py "$@"
