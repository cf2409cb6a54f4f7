#!/usr/bin/env bash
# The GPU check, one command on a machine with an NVIDIA GPU and JAX with CUDA
# (run from the repository root; the scripts put it on sys.path, no install needed).
# Logs go to $OUT (or ./gpu_logs).
set -u
OUT=${OUT:-gpu_logs}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi -L | tee "$OUT/device.txt"
python3 -c "import jax, jaxlib, optax; print('jax', jax.__version__, 'optax', optax.__version__, jax.devices())" | tee -a "$OUT/device.txt"
# issue 5: EM, N=10,000,000, vs scikit-learn's recorded per-point rate on the 2-core CPU
timeout 200 python3 benchmarks/bench_gmm.py --n 10000000 --device gpu --skip-sklearn-style \
    --repeats 3 --sklearn-sec-per-point "${SKLEARN_SEC_PER_POINT:-6.2e-7}" 2>&1 | tee "$OUT/gmm.txt"
# issue 6: one million gamma fits with standard errors
timeout 150 python3 benchmarks/bench_batch_gamma.py --B 1000000 --device gpu --no-memory \
    --scipy-fits 200 --repeats 3 2>&1 | tee "$OUT/batch.txt"
# issue 2: logistic regression N=200,000, P=20
timeout 60 python3 benchmarks/bench_core.py --only b --repeat 5 2>&1 | tee "$OUT/core.txt"
# correctness on the GPU: a subset of the test suite
timeout 120 python3 -m pytest -q -x -p no:cacheprovider tests/test_fit_textbook.py \
    tests/test_fit_methods.py tests/test_batch.py 2>&1 | tail -5 | tee "$OUT/tests.txt"
