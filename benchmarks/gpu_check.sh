#!/usr/bin/env bash
# The GPU check on a bare machine, from the repo root: installs the wheels that
# benchmarks/gpu_carry.sh put in benchmarks/gpu_carry/wheels (if any) into /tmp, then runs
# `python -m benchmarks.gpu_check` (the package benchmarks/gpu_check/) with PYTHONPATH=src.
# Arguments go to it (docs/gpus.md).
set -eu
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
if compgen -G "benchmarks/gpu_carry/wheels/*.whl" >/dev/null &&
    "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then  # py3.12 wheels
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/mersemi-gpu-site benchmarks/gpu_carry/wheels/*.whl
    export PYTHONPATH="/tmp/mersemi-gpu-site${PYTHONPATH:+:$PYTHONPATH}"
fi
PYTHONUNBUFFERED=1 PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" exec "$py" -m benchmarks.gpu_check "$@"
