"""First call of a new model (issue 10): mlejax against its peers, every call in a fresh process.

A researcher who edits a log-likelihood and fits again pays compilation on every
edit; this script times that first answer. Each (case, side) runs in its own fresh
Python process (imports and data generation excluded from the timed region,
compilation included), several repeats, interleaved with its peers; the best and
the median of the repeats are reported, and the ratio mlejax / peer (lower is
better; the issue's targets are on this ratio).

Cases (float64):

  normal        first fit of a 2-parameter Normal (n=200)
  logit         first fit of a logistic regression (n=5,000, 4 coefficients)
  weibull       first fit of a right-censored Weibull regression (N=50,000, 7 parameters),
                  every side started at the true slopes (plain Newton diverges from zero)
                  peers for these three: a minimal hand-written jitted Newton
                  (lax.while_loop + solve, inverse Hessian for SEs, mlejax's scaled-gradient
                  tolerance 1e-10) and scipy.optimize BFGS with the analytic gradient
                  (SEs from a finite-difference Hessian of that gradient)
  second        a second new 2-parameter model (logistic distribution) in the same process,
                  after a first fit of the Normal: mlejax vs the hand-written Newton
  second_logit  the same with 4 parameters: probit after logit, same data
  quickstart    `python examples/quickstart.py`, wall time of the whole process
  quickstart_cache
                the same with mlejax's persistent compilation cache enabled
                  (`mj.enable_compilation_cache(dir)` before running the script):
                  first run (empty cache) and second run (filled cache)
  batch         first `mj.fit_batch` (gamma, B=2,000, n=200) vs a hand-written jitted
                  vmap Newton's first call
  em            first `mj.em` (GaussianMixture, 3 clusters x 2-D, 1,000 points)
                  vs scikit-learn GaussianMixture
  profile       first profile intervals: `mj.fit` + `res.conf_int(method="profile")`
                  (logistic regression, n=5,000, 4 coefficients) vs statsmodels Logit
                  offset refits + scipy brentq

Run from the repository root:

    python benchmarks/bench_first_call.py                  # every case, 3 repeats
    python benchmarks/bench_first_call.py --quick          # 1 repeat (a few minutes)
    python benchmarks/bench_first_call.py --cases normal,logit --repeats 5
    python benchmarks/bench_first_call.py --json out.json  # also save the raw times
    git archive <old-commit> | tar -x -C /tmp/old && \
    python benchmarks/bench_first_call.py --baseline /tmp/old   # old mlejax as side "before", same rounds

Only the public API is used (mj.fit, mj.fit_batch, mj.em, mj.GaussianMixture,
FitResult.conf_int, mj.enable_compilation_cache when it exists), so the script
measures whatever the internals are.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TOL = 1e-10  # mlejax's default Newton tolerance on the scaled gradient


class Case(NamedTuple):
    title: str
    sides: tuple  # side names; the last one is mlejax
    target: dict  # peer side -> (target ratio mlejax / peer, or None), in table order


CASES = {
    "normal": Case("first fit, 2-parameter Normal (n=200)", ("hand", "scipy", "mlejax"),
                   {"hand": 0.6, "scipy": None}),
    "logit": Case("first fit, logistic regression (n=5,000, 4 coef.)", ("hand", "scipy", "mlejax"),
                  {"hand": 0.6, "scipy": None}),
    "weibull": Case("first fit, censored Weibull regression (N=50,000, k=7)", ("hand", "scipy", "mlejax"),
                    {"hand": 0.6, "scipy": None}),
    "second": Case("second new model, k=2 (logistic dist. after Normal)", ("hand", "mlejax"), {"hand": 0.35}),
    "second_logit": Case("second new model, k=4 (probit after logit)", ("hand", "mlejax"), {"hand": 0.35}),
    "quickstart": Case("python examples/quickstart.py (wall)", ("mlejax",), {}),
    "quickstart_cache": Case("quickstart.py with the persistent cache: 1st / 2nd run", ("mlejax",), {}),
    "batch": Case("first fit_batch, gamma (B=2,000, n=200)", ("hand", "mlejax"), {"hand": 1.0}),
    "em": Case("first em, GaussianMixture (3 x 2-D, n=1,000)", ("sklearn", "mlejax"), {"sklearn": None}),
    "profile": Case("first profile CIs, logit (n=5,000, 4 coef.)", ("statsmodels", "mlejax"),
                    {"statsmodels": None}),
}

PEER_NAMES = {
    "hand": "hand-written jitted Newton",
    "scipy": "scipy BFGS (analytic grad.) + FD Hessian SEs",
    "sklearn": "scikit-learn GaussianMixture",
    "statsmodels": "statsmodels Logit refits + brentq",
}


# ----------------------------------------------------------------------------------
# Child side: runs in a fresh process, prints one line "RESULT {json}".
# ----------------------------------------------------------------------------------


def _jax():
    import jax
    import jax.flatten_util
    import jax.scipy.special
    import jax.scipy.stats  # noqa: F401 (imported outside the timed region)

    jax.config.update("jax_enable_x64", True)
    jax.devices()  # initialise the backend outside the timed region
    return jax


CPU_OF = {}  # wall seconds of a timed call -> the process's CPU seconds (all threads) in it


def _timed(fn):
    """Seconds of one call of ``fn`` (outputs made ready) and its output. Its CPU time
    is kept in ``CPU_OF`` (on a shared machine a process waits for a core; its CPU time
    is the steadier measure)."""
    import jax

    t0, c0 = time.perf_counter(), time.process_time()
    out = jax.block_until_ready(fn())
    wall = time.perf_counter() - t0
    CPU_OF[wall] = time.process_time() - c0
    return wall, out


def hand_newton(negll, u0, maxiter=100):
    """The minimal hand-written Newton a JAX user writes: one ``lax.while_loop``,
    ``solve`` per step, the inverse Hessian for standard errors. Stops on mlejax's
    scaled-gradient rule ``max|g| max(|u|, 1) / max(|f|, 1) <= TOL``; a NaN keeps it
    running to ``maxiter`` (then the estimates disagree with mlejax's in the report)."""
    import jax
    import jax.numpy as jnp

    vg, hess = jax.value_and_grad(negll), jax.hessian(negll)

    def cond(s):
        u, f, g, it = s
        scaled = jnp.max(jnp.abs(g) * jnp.maximum(jnp.abs(u), 1.0)) / jnp.maximum(jnp.abs(f), 1.0)
        return ~(scaled <= TOL) & (it < maxiter)

    def body(s):
        u, _, g, it = s
        u = u - jnp.linalg.solve(hess(u), g)
        f, g = vg(u)
        return u, f, g, it + 1

    f0, g0 = vg(u0)
    u, _, _, it = jax.lax.while_loop(cond, body, (u0, f0, g0, 0))
    return u, jnp.sqrt(jnp.diag(jnp.linalg.inv(hess(u)))), it


def scipy_bfgs(negll, grad, u0):
    """scipy BFGS with the analytic gradient; SEs from a central-difference Hessian
    of that gradient. Returns (estimate, standard errors)."""
    import numpy as np
    from scipy.optimize import minimize  # imported by the caller before the timed region

    r = minimize(negll, u0, jac=grad, method="BFGS", options={"gtol": 1e-8, "maxiter": 5000})
    k, h = r.x.size, 1e-5 * np.maximum(np.abs(r.x), 1.0)
    hess = np.empty((k, k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = h[j]
        hess[:, j] = (grad(r.x + e) - grad(r.x - e)) / (2 * h[j])
    return r.x, np.sqrt(np.diag(np.linalg.inv(0.5 * (hess + hess.T))))


def _flat(params):
    import numpy as np
    from jax.flatten_util import ravel_pytree

    return np.asarray(ravel_pytree(params)[0]).tolist()


def _mlejax_fit(loglik, init, data):
    import mlejax as mj

    return _timed(lambda: mj.fit(loglik, init, data))


# -- models (log-likelihoods; the hand-written/scipy sides work on the same scale) --


def normal_data():
    import numpy as np

    return np.random.default_rng(0).normal(1.0, 1.5, size=200)


def normal_ll(p, x):
    import jax.scipy.stats as st

    return st.norm.logpdf(x, p["mu"], p["sigma"]).sum()


def logistic_dist_ll(p, x):
    import jax

    z = (x - p["mu"]) / p["sigma"]
    return (-z - jax.numpy.log(p["sigma"]) - 2.0 * jax.nn.softplus(-z)).sum()


def logit_data(n=5000):
    import numpy as np

    rng = np.random.default_rng(1)
    x = np.column_stack([np.ones(n), rng.normal(size=(n, 3))])
    y = (rng.random(n) < 1 / (1 + np.exp(-x @ np.array([-0.5, 1.0, -0.5, 0.25])))).astype(float)
    return x, y


def logit_ll(b, d):
    import jax.numpy as jnp

    eta = d["X"] @ b
    return jnp.sum(d["y"] * eta - jnp.logaddexp(0.0, eta))


def probit_ll(b, d):
    import jax.scipy.stats as st

    eta = d["X"] @ b
    return (d["y"] * st.norm.logcdf(eta) + (1 - d["y"]) * st.norm.logcdf(-eta)).sum()


def weibull_data():
    import numpy as np

    from mlejax.datasets import censored_weibull

    d = censored_weibull(n=50_000, seed=0)
    start = np.append(d["beta"], 0.0)  # plain Newton diverges from zero slopes or a data-based start
    return {k: d[k] for k in ("X", "t", "event")}, start


def weibull_ll(p, d):
    import jax.numpy as jnp

    k = jnp.exp(p["log_k"])
    z = (jnp.log(d["t"]) - d["X"] @ p["beta"]) * k
    return jnp.sum(d["event"] * (jnp.log(k) + z - jnp.log(d["t"])) - jnp.exp(z))


def gamma_ll(p, x):
    import jax.numpy as jnp
    from jax.scipy.special import gammaln

    a, b = p["shape"], p["rate"]
    return x.shape[0] * (a * jnp.log(b) - gammaln(a)) + (a - 1.0) * jnp.sum(jnp.log(x)) - b * jnp.sum(x)


def gamma_moments(x):
    import jax.numpy as jnp

    m, v = jnp.mean(x), jnp.var(x)
    return m * m / v, m / v


# -- the sides ----------------------------------------------------------------------


def child_normal(side):
    import numpy as np

    x = normal_data()
    if side == "scipy":
        import scipy.optimize  # noqa: F401 (outside the timed region)

        n = x.size

        def negll(u):
            s2 = np.exp(2 * u[1])
            return n * u[1] + np.sum((x - u[0]) ** 2) / (2 * s2)

        def grad(u):
            r, s2 = x - u[0], np.exp(2 * u[1])
            return np.array([-np.sum(r) / s2, n - np.sum(r * r) / s2])

        t, (u, _) = _timed(lambda: scipy_bfgs(negll, grad, np.zeros(2)))
        return {"time": t, "est": [u[0], float(np.exp(u[1]))]}
    jax = _jax()
    xj = jax.numpy.asarray(x)
    if side == "hand":
        f = jax.jit(lambda x: hand_newton(lambda u: -normal_ll({"mu": u[0], "sigma": jax.numpy.exp(u[1])}, x),
                                          jax.numpy.zeros(2)))
        t, (u, _, it) = _timed(lambda: f(xj))
        return {"time": t, "est": [float(u[0]), float(np.exp(u[1]))], "n_iter": int(it)}
    import mlejax as mj

    init = {"mu": 0.0, "sigma": mj.Positive(1.0)}
    t, res = _mlejax_fit(normal_ll, init, xj)
    x2 = jax.block_until_ready(xj + 0.1)  # new numbers, same shapes (made outside the timed region)
    warm, _ = _timed(lambda: mj.fit(normal_ll, init, x2))
    return {"time": t, "warm": warm, "est": _flat(res.params), "n_iter": int(res.n_iter)}


def child_logit(side):
    import numpy as np

    x, y = logit_data()
    if side == "scipy":
        import scipy.optimize  # noqa: F401 (outside the timed region)

        def negll(b):
            eta = x @ b
            return -np.sum(y * eta - np.logaddexp(0.0, eta))

        def grad(b):
            return -x.T @ (y - 1 / (1 + np.exp(-(x @ b))))

        t, (b, _) = _timed(lambda: scipy_bfgs(negll, grad, np.zeros(4)))
        return {"time": t, "est": b.tolist()}
    jax = _jax()
    d = {"X": jax.numpy.asarray(x), "y": jax.numpy.asarray(y)}
    if side == "hand":
        f = jax.jit(lambda d: hand_newton(lambda b: -logit_ll(b, d), jax.numpy.zeros(4)))
        t, (b, _, it) = _timed(lambda: f(d))
        return {"time": t, "est": np.asarray(b).tolist(), "n_iter": int(it)}
    import mlejax as mj

    t, res = _mlejax_fit(logit_ll, jax.numpy.zeros(4), d)
    warm, _ = _timed(lambda: mj.fit(logit_ll, jax.numpy.zeros(4), d))
    return {"time": t, "warm": warm, "est": _flat(res.params), "n_iter": int(res.n_iter)}


def child_weibull(side):
    import numpy as np

    d, start = weibull_data()
    if side == "scipy":
        import scipy.optimize  # noqa: F401 (outside the timed region)

        X, lt, ev = d["X"], np.log(d["t"]), d["event"]

        def negll(u):
            k = np.exp(u[-1])
            z = (lt - X @ u[:-1]) * k
            return -np.sum(ev * (u[-1] + z - lt) - np.exp(z))

        def grad(u):
            k = np.exp(u[-1])
            z = (lt - X @ u[:-1]) * k
            r = ev - np.exp(z)
            return -np.concatenate([-k * (X.T @ r), [np.sum(ev + r * z)]])

        t, (u, _) = _timed(lambda: scipy_bfgs(negll, grad, start))
        return {"time": t, "est": u.tolist()}
    jax = _jax()
    jnp = jax.numpy
    dj = {k: jnp.asarray(v) for k, v in d.items()}
    if side == "hand":
        f = jax.jit(lambda d, u0: hand_newton(lambda u: -weibull_ll({"beta": u[:-1], "log_k": u[-1]}, d), u0))
        t, (u, _, it) = _timed(lambda: f(dj, jnp.asarray(start)))
        return {"time": t, "est": np.asarray(u).tolist(), "n_iter": int(it)}
    import mlejax as mj

    init = {"beta": jnp.asarray(start[:-1]), "log_k": 0.0}
    t, res = _mlejax_fit(weibull_ll, init, dj)
    warm, _ = _timed(lambda: mj.fit(weibull_ll, init, dj))
    return {"time": t, "warm": warm, "est": _flat(res.params), "n_iter": int(res.n_iter)}


def _second(side, first, second, init, data, u0):
    """Fit ``first`` (untimed), then time the first fit of the new model ``second``;
    ``init(u)`` maps the hand-written Newton's vector to the models' parameters
    (started at ``u0``), ``init(None)`` is mlejax's starting pytree (the same point)."""
    jax = _jax()
    if side == "hand":
        def solver(ll):
            return jax.jit(lambda d: hand_newton(lambda u: -ll(init(u), d), jax.numpy.asarray(u0)))

        t1, _ = _timed(lambda: solver(first)(data))
        t, (u, _, it) = _timed(lambda: solver(second)(data))
        return {"time": t, "first_model": t1, "est": _flat(init(u)), "n_iter": int(it)}
    t1, _ = _mlejax_fit(first, init(None), data)
    t, res = _mlejax_fit(second, init(None), data)
    return {"time": t, "first_model": t1, "est": _flat(res.params), "n_iter": int(res.n_iter)}


def child_second(side):
    import mlejax as mj

    jax = _jax()

    def init(u):  # hand-written: (mu, log sigma) -> natural; mlejax: its init pytree
        if u is None:
            return {"mu": 1.0, "sigma": mj.Positive(1.0)}  # plain Newton diverges from mu=0 here
        return {"mu": u[0], "sigma": jax.numpy.exp(u[1])}

    return _second(side, normal_ll, logistic_dist_ll, init, jax.numpy.asarray(normal_data()), [1.0, 0.0])


def child_second_logit(side):
    jax = _jax()
    x, y = logit_data()

    def init(u):
        return jax.numpy.zeros(4) if u is None else u

    return _second(side, logit_ll, probit_ll, init, {"X": jax.numpy.asarray(x), "y": jax.numpy.asarray(y)}, [0.0] * 4)


def child_batch(side):
    import numpy as np

    jax = _jax()
    jnp = jax.numpy
    x = jnp.asarray(np.random.default_rng(0).gamma(2.5, 1 / 1.5, size=(2000, 200)))
    if side == "hand":
        def one(xi):
            u, se, it = hand_newton(lambda u: -gamma_ll({"shape": jnp.exp(u[0]), "rate": jnp.exp(u[1])}, xi),
                                    jnp.log(jnp.stack(gamma_moments(xi))))
            return jnp.exp(u), se, it

        f = jax.jit(jax.vmap(one))
        t, (th, _, it) = _timed(lambda: f(x))
        return {"time": t, "est": np.asarray(th).mean(axis=0).tolist(), "n_iter": int(np.max(it))}
    import mlejax as mj

    def start(xi):
        a, b = gamma_moments(xi)
        return {"shape": mj.Positive(a), "rate": mj.Positive(b)}

    t, res = _timed(lambda: mj.fit_batch(gamma_ll, None, x, init_fn=start))
    x2 = jax.block_until_ready(x * 1.01)
    warm, _ = _timed(lambda: mj.fit_batch(gamma_ll, None, x2, init_fn=start))
    est = [float(np.mean(res.params["shape"])), float(np.mean(res.params["rate"]))]
    return {"time": t, "warm": warm, "est": est, "n_iter": int(np.max(res.n_iter))}


def em_data():
    import numpy as np

    rng = np.random.default_rng(0)
    means = np.array([[0.0, 0.0], [4.0, 1.0], [1.0, 5.0]])
    return np.concatenate([rng.multivariate_normal(m, [[1.0, 0.3], [0.3, 0.8]], size=n)
                           for m, n in zip(means, (400, 350, 250))])


def child_em(side):
    x = em_data()
    if side == "sklearn":
        from sklearn.mixture import GaussianMixture

        t, gm = _timed(lambda: GaussianMixture(3, covariance_type="full", random_state=0).fit(x))
        return {"time": t, "est": [float(gm.score(x) * len(x))], "n_iter": int(gm.n_iter_)}
    jax = _jax()
    import mlejax as mj

    xj = jax.numpy.asarray(x)
    key = jax.block_until_ready(jax.random.key(0))
    t, res = _timed(lambda: mj.em(mj.GaussianMixture(3, covariance_type="full"), xj, key=key))
    x2 = jax.block_until_ready(xj + 0.01)
    warm, _ = _timed(lambda: mj.em(mj.GaussianMixture(3, covariance_type="full"), x2, key=key))
    return {"time": t, "warm": warm, "est": [float(res.loglik)], "n_iter": int(res.n_iter)}


def child_profile(side):
    import numpy as np

    x, y = logit_data()
    if side == "statsmodels":
        import warnings

        warnings.simplefilter("ignore")
        from bench_inference import sm_profile_intervals  # benchmarks/ is on sys.path

        t, ci = _timed(lambda: sm_profile_intervals(x, y))
        return {"time": t, "est": np.asarray(ci).ravel().tolist()}
    jax = _jax()
    import mlejax as mj

    d = {"X": jax.numpy.asarray(x), "y": jax.numpy.asarray(y)}

    b0 = jax.numpy.zeros(4)

    def run(d):
        return mj.fit(logit_ll, b0, d).conf_int(method="profile")

    t, ci = _timed(lambda: run(d))
    warm, _ = _timed(lambda: run(d))
    return {"time": t, "warm": warm, "est": np.column_stack([np.asarray(ci[0]), np.asarray(ci[1])]).ravel().tolist()}


CHILDREN = {"normal": child_normal, "logit": child_logit, "weibull": child_weibull, "second": child_second,
            "second_logit": child_second_logit, "batch": child_batch, "em": child_em, "profile": child_profile}


# ----------------------------------------------------------------------------------
# Parent side: schedules fresh processes, interleaved, and prints the table.
# ----------------------------------------------------------------------------------


def _env(root):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, HERE] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    for var in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"):
        env.pop(var, None)  # a user's persistent cache would hide the first-call cost
    return env


def _run(cmd, timeout, root):
    """Wall seconds and stdout of ``cmd`` run with ``root``'s mlejax first on the path."""
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(root), timeout=timeout, cwd=root)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}... failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return wall, out.stdout


def run_child(case, side, timeout, root):
    _, stdout = _run([sys.executable, os.path.abspath(__file__), "--child", case, side], timeout, root)
    line = [s for s in stdout.splitlines() if s.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


CACHE_WRAPPER = """
import runpy, sys, jax
import mlejax as mj
path = sys.argv[1]
if hasattr(mj, "enable_compilation_cache"):
    mj.enable_compilation_cache(path)
else:  # an mlejax without it: the two settings it makes
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
sys.argv = [sys.argv[2]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_quickstart(cache, timeout, root):
    """Wall time of `python examples/quickstart.py` (``root``'s); with ``cache`` (a
    directory) the persistent compilation cache is enabled first, and the script runs
    twice: "first_run" (empty cache) and "time" (the second run)."""
    script = os.path.join(root, "examples", "quickstart.py")
    if cache is None:
        return {"time": _run([sys.executable, script], timeout, root)[0]}
    cmd = [sys.executable, "-c", CACHE_WRAPPER, cache, script]
    first = _run(cmd, timeout, root)[0]
    second = _run(cmd, timeout, root)[0]
    return {"time": second, "first_run": first, "cache_files": sum(len(f) for _, _, f in os.walk(cache))}


def run_side(case, side, timeout, baseline):
    """One fresh-process run; side "before" is mlejax imported from the ``baseline`` tree."""
    root = baseline if side == "before" else ROOT
    side = "mlejax" if side == "before" else side
    if case == "quickstart":
        return run_quickstart(None, timeout, root)
    if case == "quickstart_cache":
        cache = tempfile.mkdtemp(prefix="mlejax-bench-cache-")
        try:
            return run_quickstart(cache, timeout, root)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    return run_child(case, side, timeout, root)


def schedule(cases, repeats, timeout, baseline, log):
    """Run every (case, side) ``repeats`` times, interleaved: all sides of all cases in
    one round, the order of the sides reversed every other round."""
    extra = ("before",) if baseline else ()
    results = {(c, s): [] for c in cases for s in CASES[c].sides + extra}
    for r in range(repeats):
        for c in cases:
            sides = CASES[c].sides + extra
            for s in sides if r % 2 == 0 else sides[::-1]:
                try:
                    out = run_side(c, s, timeout, baseline)
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    out = {"error": str(e).strip().splitlines()[-1][:200]}
                    print(f"  ! {c}/{s}: {out['error']}", file=sys.stderr)
                results[(c, s)].append(out)
                if log:
                    shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items() if k not in ("est", "tree")}
                    print(f"  round {r + 1}/{repeats}  {c:<16} {s:<12} {shown}", flush=True)
    return results


def _times(runs, key="time"):
    return [run[key] for run in runs if key in run]


def _fmt(ts):
    if not ts:
        return "error"
    return f"{min(ts):.2f} s" + (f" (med {statistics.median(ts):.2f})" if len(ts) > 1 else "")


def _max_rel_diff(a, b):
    import numpy as np

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        return float("nan")
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def _check_estimates(c, results, peers):
    """Print how far each side's estimates are from mlejax's (a diverged peer shows here)."""
    est = {s: next((r["est"] for r in runs if "est" in r), None) for (case, s), runs in results.items() if case == c}
    for s in peers:
        if est.get("mlejax") is not None and est.get(s) is not None:
            print(f"  {c}: max rel. difference of estimates, mlejax vs {s}: {_max_rel_diff(est['mlejax'], est[s]):.1e}")


def report(cases, results, baseline):
    """One row per (case, peer): the best (and median) first call of each, the ratio
    mlejax / peer of the best times, the issue's target, and with a baseline tree
    its mlejax first call in the same run."""
    rows = []
    for c in cases:
        case = CASES[c]
        mj_runs = results[(c, "mlejax")]
        t_mj = _times(mj_runs)
        before = [_fmt(_times(results[(c, "before")]))] if baseline else []
        if c == "quickstart":
            rows.append((case.title, "-", "-", _fmt(t_mj), "-", "<= 6 s", *before))
        elif c == "quickstart_cache":
            first = [_fmt(_times(results[(c, "before")], "first_run")) + " / " + before[0]] if baseline else []
            rows.append((case.title, "-", "-", _fmt(_times(mj_runs, "first_run")) + " / " + _fmt(t_mj), "-",
                         "2nd run <= 3 s", *first))
        for peer, target in case.target.items():
            t_peer = _times(results[(c, peer)])
            ratio = f"{min(t_mj) / min(t_peer):.2f}x" if t_mj and t_peer else "-"
            rows.append((case.title, PEER_NAMES[peer], _fmt(t_peer), _fmt(t_mj), ratio,
                         f"<= {target}x" if target else "reported", *before))
        _check_estimates(c, results, list(case.target) + (["before"] if baseline else []))
        for peer in case.target:
            cpu_mj, cpu_peer = _times(mj_runs, "cpu"), _times(results[(c, peer)], "cpu")
            cpu_before = _times(results[(c, "before")], "cpu") if baseline else []
            if cpu_mj and cpu_peer:
                print(f"  {c}: first call CPU time (all threads): {peer} {_fmt(cpu_peer)}, mlejax {_fmt(cpu_mj)}, "
                      f"ratio {min(cpu_mj) / min(cpu_peer):.2f}x" + (f"; baseline tree {_fmt(cpu_before)}, ratio "
                                                                  f"{min(cpu_before) / min(cpu_peer):.2f}x" if cpu_before else ""))
        warm = _times(mj_runs, "warm")
        if warm:
            print(f"  {c}: mlejax warm call {min(warm) * 1e3:.1f} ms")
    head = ("case", "peer", "peer first call", "mlejax first call", "ratio mlejax/peer", "target")
    head += ("mlejax first call, baseline tree",) if baseline else ()
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of: {', '.join(CASES)}")
    ap.add_argument("--repeats", type=int, default=3, help="fresh processes per side, interleaved (default 3)")
    ap.add_argument("--quick", action="store_true", help="one repeat of every case")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per process")
    ap.add_argument("--json", help="also write the raw results to this file")
    ap.add_argument("--baseline", metavar="DIR",
                    help="another source tree (e.g. an older commit, `git archive`d): its mlejax runs as side "
                         "'before' in the same interleaved rounds")
    ap.add_argument("--quiet", action="store_true", help="do not print each run as it finishes")
    ap.add_argument("--child", nargs=2, metavar=("CASE", "SIDE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        out = CHILDREN[args.child[0]](args.child[1])
        if out.get("time") in CPU_OF:
            out["cpu"] = CPU_OF[out["time"]]
        if "mlejax" in sys.modules:  # which tree's mlejax ran (the baseline's or this one's)
            out["tree"] = os.path.dirname(os.path.dirname(sys.modules["mlejax"].__file__))
        print("RESULT " + json.dumps(out))
        return
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose from {', '.join(CASES)}")
    repeats = 1 if args.quick else args.repeats
    print(f"{sys.executable}; {os.cpu_count()} CPUs; {repeats} repeat(s), fresh process per run; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    t0 = time.perf_counter()
    baseline = os.path.abspath(args.baseline) if args.baseline else None
    results = schedule(cases, repeats, args.timeout, baseline, not args.quiet)
    report(cases, results, baseline)
    print(f"\n(total {time.perf_counter() - t0:.0f} s; load average now {os.getloadavg()[0]:.1f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({f"{c}/{s}": v for (c, s), v in results.items()}, f, indent=1)


if __name__ == "__main__":
    main()
