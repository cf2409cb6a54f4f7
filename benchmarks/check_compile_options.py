"""Do mlejax's compile options change any answer? The same fits under both settings.

    PYTHONPATH=. python benchmarks/check_compile_options.py

mlejax compiles its programs with XLA's older CPU emitters
(``xla_cpu_use_fusion_emitters=False``, ``mlejax/_jit.py``) because they compile
1.3-2x faster; ``MLEJAX_FAST_COMPILE=0`` gives XLA's defaults. Since the older emitters
were seen to give NaN in one program compiled alone
(``benchmarks/repro_legacy_emitter_nan.py``), this runs a set of fits in two fresh
processes, one per setting, and compares every number: the shared problem grid
(``tests/problems.py``) through ``mj.fit`` (host-driven), under ``jax.jit`` (the
compiled loop) and through ``mj.fit_batch``; a Gaussian mixture and a Poisson HMM
with standard errors (the latter on the boundary case of the repro); a GLM; profile
intervals; a bootstrap. It prints the largest relative difference per case and any
case whose status or NaN pattern differs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _flat(tree):
    import jax

    leaves = [np.ravel(np.asarray(a, float)) for a in jax.tree_util.tree_leaves(tree) if a is not None]
    return np.concatenate(leaves).tolist() if leaves else []


def _fit_numbers(res):
    return {"params": _flat(res.params), "stderr": _flat(res.stderr), "loglik": [float(np.asarray(res.loglik))],
            "status": [int(np.asarray(res.status))]}


def child():
    import jax

    jax.config.update("jax_enable_x64", True)
    sys.path.insert(0, str(ROOT / "tests"))
    import jax.numpy as jnp
    from problems import PROBLEMS
    from test_hmm_batch import TRUTH, _simulate

    import mlejax as mj

    warnings.simplefilter("ignore")
    out = {}
    for p in PROBLEMS:
        try:
            out[f"fit/{p.name}"] = _fit_numbers(mj.fit(p.loglik, p.init, p.data))
            out[f"jit/{p.name}"] = _fit_numbers(jax.jit(lambda d, p=p: mj.fit(p.loglik, p.init, d))(p.data))
            stacked = jax.tree_util.tree_map(lambda a: jnp.stack([jnp.asarray(a)] * 3), p.data)
            b = mj.fit_batch(p.loglik, p.init, stacked)
            out[f"batch/{p.name}"] = {"params": _flat(b.params), "stderr": _flat(b.stderr),
                                      "loglik": _flat(b.loglik), "status": _flat(b.status)}
        except Exception as e:  # noqa: BLE001 - a refusal is itself a result to compare
            out[f"fit/{p.name}"] = {"error": [type(e).__name__]}
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (150, 2)), rng.normal(3, 0.7, (100, 2))])
    out["em/gmm"] = _fit_numbers(mj.em(mj.GaussianMixture(2, "full"), x, key=jax.random.key(0)))
    r = np.random.default_rng(0)
    data = [list(_simulate(r, 2, 40, TRUTH)) for _ in range(3)]
    for i, d in enumerate([data[0], data[1][:1], [data[2][0][:30], data[2][1]]]):
        res = mj.em(mj.HMM(mj.dist.Poisson(), 2), d, key=jax.random.split(jax.random.key(1), 3)[i], tol=1e-8)
        out[f"hmm/{i}"] = _fit_numbers(res)
    xg = np.column_stack([np.ones(300), rng.normal(size=(300, 2))])
    yg = rng.poisson(np.exp(xg @ np.array([0.3, 0.5, -0.4]))).astype(float)
    g = mj.glm(yg, xg, "poisson")
    out["glm/poisson"] = _fit_numbers(g)
    out["profile/poisson"] = {"params": _flat(g.conf_int(method="profile"))}
    boot = mj.bootstrap(g, jax.random.key(3), n_boot=50)
    out["bootstrap/poisson"] = {"params": _flat(boot.replicates), "status": _flat(boot.status)}
    print(json.dumps(out))


def run(fast: str) -> dict:
    env = dict(os.environ, MLEJAX_FAST_COMPILE=fast, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    older, default = run("1"), run("0")
    worst, odd = [], []
    for case in sorted(older):
        for field, a in older[case].items():
            b = default.get(case, {}).get(field)
            if field == "error" or b is None or len(a) != len(b):
                if a != b:
                    odd.append(f"{case} {field}: {a} vs {b}")
                continue
            a, b = np.asarray(a, float), np.asarray(b, float)
            if field == "status" or not np.array_equal(np.isnan(a), np.isnan(b)):
                if not np.array_equal(a, b, equal_nan=True):
                    odd.append(f"{case} {field}: {a.tolist()} vs {b.tolist()}")
                continue
            m = np.isfinite(a) & np.isfinite(b)
            rel = float(np.max(np.abs(a[m] - b[m]) / np.maximum(np.abs(b[m]), 1e-300), initial=0.0))
            worst.append((rel, f"{case} {field}"))
    worst.sort(reverse=True)
    print(f"{len(older)} cases compared, older emitters (mlejax's option) vs XLA's defaults")
    print("largest relative differences:")
    for rel, what in worst[:8]:
        print(f"  {rel:.1e}  {what}")
    print("status / NaN pattern / error differences:" if odd else "no status, NaN-pattern or error differences")
    for line in odd:
        print("  " + line)


if __name__ == "__main__":
    child() if "--child" in sys.argv else main()
