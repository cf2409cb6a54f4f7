"""fit_dist vs scipy.stats.<dist>.fit and mj.glm vs statsmodels, in the same run.

    .venv/bin/python benchmarks/bench_dist_glm.py [--repeat 5]

For each task: the peer's time (best of ``--repeat`` runs: the machines are shared,
and the minimum is the least disturbed by other jobs), mlejax's first call
(compilation included) and warm time (best of ``--repeat``, with new data of the
same shape so nothing is recompiled), the ratio peer / mlejax-warm, and the largest relative
difference of the estimates from the peer's. mlejax's times include its input
checks and the standard errors (which scipy does not compute).
"""

from __future__ import annotations

import argparse
import time
import warnings

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import scipy.stats as st  # noqa: E402
import statsmodels.api as sm  # noqa: E402

import mlejax as mj  # noqa: E402
from mlejax import dist as D  # noqa: E402


def _block(res):
    jax.block_until_ready(res.stderr)
    return res


def _best_time(fn, args_list):
    times = []
    out = None
    for args in args_list:
        t0 = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - t0)
    return float(np.min(times)), out


N = 10_000
DISTS = [
    # name, family, sampler(rng), scipy fit -> our parametrisation
    ("Normal", D.Normal(), lambda r: r.normal(2, 3, N),
     lambda x: dict(zip(("mu", "sigma"), st.norm.fit(x)))),
    ("Exponential", D.Exponential(), lambda r: r.exponential(2, N),
     lambda x: {"rate": 1 / st.expon.fit(x, floc=0)[1]}),
    ("LogNormal", D.LogNormal(), lambda r: r.lognormal(1, 0.5, N),
     lambda x: (lambda s, _, sc: {"mu": np.log(sc), "sigma": s})(*st.lognorm.fit(x, floc=0))),
    ("Gamma", D.Gamma(), lambda r: r.gamma(2.5, 2, N),
     lambda x: (lambda a, _, sc: {"shape": a, "rate": 1 / sc})(*st.gamma.fit(x, floc=0))),
    ("Beta", D.Beta(), lambda r: r.beta(2, 3, N),
     lambda x: dict(zip(("a", "b"), st.beta.fit(x, floc=0, fscale=1)[:2]))),
    ("Weibull", D.Weibull(), lambda r: 3 * r.weibull(1.7, N),
     lambda x: (lambda c, _, sc: {"shape": c, "scale": sc})(*st.weibull_min.fit(x, floc=0))),
    ("StudentT", D.StudentT(), lambda r: 1 + 2 * r.standard_t(4, N),
     lambda x: dict(zip(("df", "loc", "scale"), st.t.fit(x)))),
    ("Laplace", D.Laplace(), lambda r: r.laplace(1, 2, N),
     lambda x: dict(zip(("loc", "scale"), st.laplace.fit(x)))),
]


def _glm_tasks():
    sp = sm.datasets.spector.load_pandas()
    ys, xs = sp.endog.values.astype(float), sm.add_constant(sp.exog.values.astype(float))
    rh = sm.datasets.randhie.load_pandas()
    yr = rh.endog.values.astype(float)
    xr = sm.add_constant(rh.exog.values.astype(float), prepend=False)
    sc = sm.datasets.scotland.load_pandas()
    yg, xg = sc.endog.values, sm.add_constant(sc.exog.values, prepend=False)
    rng = np.random.default_rng(0)
    xl = np.column_stack([np.ones(20_000), rng.normal(size=(20_000, 9))])
    yl = (rng.random(20_000) < 1 / (1 + np.exp(-(xl @ rng.normal(0, 0.5, 10))))).astype(float)
    fit_kw = dict(disp=0, method="newton", tol=1e-10, maxiter=100)
    return [
        ("logit, spector (32x4)", ys, xs, "logit", lambda y, x: sm.Logit(y, x).fit(**fit_kw).params),
        ("probit, spector (32x4)", ys, xs, "probit", lambda y, x: sm.Probit(y, x).fit(**fit_kw).params),
        ("logit, simulated (20000x10)", yl, xl, "logit", lambda y, x: sm.Logit(y, x).fit(**fit_kw).params),
        ("Poisson, randhie (20190x10)", yr, xr, "poisson", lambda y, x: sm.Poisson(y, x).fit(**fit_kw).params),
        ("NB2, randhie (20190x10)", yr, xr, "negbin",
         lambda y, x: sm.NegativeBinomial(y, x).fit(**fit_kw).params[:-1]),
        ("Gamma GLM, scotland (32x8)", yg, xg, "gamma",
         lambda y, x: sm.GLM(y, x, family=sm.families.Gamma()).fit(tol=1e-10).params),
        ("linear, randhie (20190x10)", yr, xr, "linear", lambda y, x: sm.OLS(y, x).fit().params),
    ]


def _rel(a, b):
    a, b = np.ravel(np.asarray(a, float)), np.ravel(np.asarray(b, float))
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def _row(task, peer, t_peer, t_first, t_warm, diff):
    print(f"| {task} | {peer} | {t_peer * 1e3:.1f} ms | {t_first:.2f} s | {t_warm * 1e3:.1f} ms | "
          f"{t_peer / t_warm:.1f}x | {diff:.1e} |")


def main(repeat: int):
    warnings.simplefilter("ignore")
    header = "| task | peer | peer time | mlejax first call | mlejax warm | peer / mlejax | max rel. diff |"
    print(header)
    print("|" + "---|" * 7)
    for name, fam, sample, scipy_fit in DISTS:
        rngs = [np.random.default_rng(i) for i in range(repeat + 1)]
        xs = [sample(r) for r in rngs]
        t_peer, want = _best_time(scipy_fit, [(x,) for x in xs[1:]])
        t0 = time.perf_counter()
        _block(mj.fit_dist(fam, xs[0]))
        t_first = time.perf_counter() - t0
        t_warm, res = _best_time(lambda x: _block(mj.fit_dist(fam, x)), [(x,) for x in xs[1:]])
        diff = _rel([res.params[k] for k in want], [want[k] for k in want])
        _row(f"fit_dist {name}, n={N}", f"scipy.stats.{name.lower()}.fit", t_peer, t_first, t_warm, diff)
    for task, y, x, model, peer in _glm_tasks():
        t_peer, want = _best_time(peer, [(y, x)] * repeat)
        t0 = time.perf_counter()
        _block(mj.glm(y, x, model))
        t_first = time.perf_counter() - t0
        # warm: the same shapes, responses permuted (new numbers, no recompilation)
        perms = [np.random.default_rng(i).permutation(len(y)) for i in range(repeat)]
        t_warm, _ = _best_time(lambda yy, xx: _block(mj.glm(yy, xx, model)), [(y[p], x[p]) for p in perms])
        res = mj.glm(y, x, model)
        peer_name = "statsmodels " + ("GLM" if model == "gamma" else "OLS" if model == "linear" else "discrete (newton)")
        _row(task, peer_name, t_peer, t_first, t_warm, _rel(res.params["beta"], want))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    main(ap.parse_args().repeat)
