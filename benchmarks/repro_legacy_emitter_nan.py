"""XLA's older CPU emitters give NaN where XLA's defaults and op-by-op evaluation do not.

    PYTHONPATH=. python benchmarks/repro_legacy_emitter_nan.py

mlejax compiles its programs with ``xla_cpu_use_fusion_emitters=False`` (quicker
compiles; ``mlejax/_jit.py``). Found 2026-12-02: the Hessian of a two-state Poisson
HMM's log-likelihood on the free scale, for a single sequence whose fitted start
probabilities sit on the boundary ([1, 0]), comes out with NaN rows when compiled with
those emitters as a program of its own, and finite with XLA's defaults and op by op
(the same function, the same inputs). Inside mlejax's single-fit standard-error
program (the analysis in the same program) it is finite, so no result changes today;
the repro is kept to decide about the option (see benchmarks/README.md, "A NaN from
XLA's older emitters").
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_hmm_batch import TRUTH, _simulate  # noqa: E402

import mlejax as mj  # noqa: E402
import mlejax.hmm._result as hmm_result  # noqa: E402
from mlejax.hmm._data import to_device  # noqa: E402


def main():
    rng = np.random.default_rng(0)
    datasets = [list(_simulate(rng, 2, 40, TRUTH)) for _ in range(3)]
    data = datasets[1][:1]  # one sequence: the fitted start probabilities are [1, 0]
    model = mj.HMM(mj.dist.Poisson(), 2)
    key = jax.random.split(jax.random.key(1), 3)[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params = mj.em(model, data, key=key, tol=1e-8, stderr=False).params
    x, mask, observed = to_device(model.sequences(data, None, "error"))

    def hessian(params, x, mask, observed):
        u = hmm_result._free(model, params)[0]

        def ll(v):
            return jnp.sum(model.loglik(hmm_result._from_free(model, v, params), x, mask, observed))

        return jax.hessian(ll)(u)

    args = (params, x, mask, observed)
    legacy = jax.jit(hessian, compiler_options={"xla_cpu_use_fusion_emitters": False})(*args)
    default = jax.jit(hessian)(*args)
    with jax.disable_jit():
        eager = hessian(*args)
    print("params", {k: np.asarray(v).round(3).tolist() for k, v in params.items()})
    for name, h in (("older emitters", legacy), ("XLA defaults", default), ("op by op", eager)):
        print(f"{name}: finite {bool(np.isfinite(np.asarray(h)).all())}")


if __name__ == "__main__":
    main()
