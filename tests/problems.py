"""A shared grid of test problems, each with its oracle.

Every :class:`Problem` carries a log-likelihood, a start, data and what the fit
must give: estimates and standard errors from an independent oracle (closed
forms, statsmodels, scipy), or the status a fault case must end with. Test files
import ``PROBLEMS`` (or one problem by name) instead of keeping their own copies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy import stats

import mlejax as mj


@dataclasses.dataclass(frozen=True)
class Problem:
    name: str
    loglik: Callable
    init: Any
    data: Any
    status: mj.Status = mj.Status.SUCCESS
    # oracle() -> (flat estimates, flat standard errors) in the order of the leaves
    oracle: Callable | None = None
    rtol: float = 1e-7


def _flat(tree):
    return np.concatenate([np.ravel(np.asarray(a)) for a in jax.tree_util.tree_leaves(tree)])


# -- Normal: closed form ---------------------------------------------------------------
X_NORMAL = np.random.default_rng(0).normal(5.0, 2.0, 200)


def normal_ll(p, x):
    return jnp.sum(stats.norm.logpdf(x, p["mu"], p["sigma"]))


def _normal_oracle():
    n, m, s = len(X_NORMAL), X_NORMAL.mean(), X_NORMAL.std()
    return np.array([m, s]), np.array([s / np.sqrt(n), s / np.sqrt(2 * n)])


# -- Poisson rate: closed form ---------------------------------------------------------
Y_POISSON = np.random.default_rng(1).poisson(3.2, 150).astype(float)


def poisson_ll(p, y):
    return jnp.sum(stats.poisson.logpmf(y, p["rate"]))


def _poisson_oracle():
    lam = Y_POISSON.mean()
    return np.array([lam]), np.array([np.sqrt(lam / len(Y_POISSON))])


# -- logistic regression: statsmodels --------------------------------------------------
_rng = np.random.default_rng(2)
X_LOGIT = np.column_stack([np.ones(400), _rng.normal(size=(400, 2))])
Y_LOGIT = (_rng.uniform(size=400) < 1 / (1 + np.exp(-(X_LOGIT @ np.array([-0.3, 1.0, -0.7]))))).astype(
    float
)


def logit_ll(p, d):
    eta = d["X"] @ p["beta"]
    return jnp.sum(d["y"] * eta - jnp.logaddexp(0.0, eta))


def _logit_oracle():
    import statsmodels.api as sm

    r = sm.Logit(Y_LOGIT, X_LOGIT).fit(disp=0, tol=1e-14, maxiter=100)
    return np.asarray(r.params), np.asarray(r.bse)


# -- constrained Gamma: profile equation and the analytic information ------------------
X_GAMMA = np.random.default_rng(3).gamma(2.5, 1 / 1.7, size=300)


def gamma_ll(p, x):
    return jnp.sum(stats.gamma.logpdf(x, p["shape"], scale=1.0 / p["rate"]))


def _gamma_oracle():
    from scipy.optimize import brentq
    from scipy.special import digamma, polygamma

    s = np.log(X_GAMMA.mean()) - np.mean(np.log(X_GAMMA))
    k = brentq(lambda k: np.log(k) - digamma(k) - s, 1e-3, 1e3, xtol=1e-15, rtol=1e-15)
    r, n = k / X_GAMMA.mean(), len(X_GAMMA)
    info = n * np.array([[polygamma(1, k), -1 / r], [-1 / r, k / r**2]])
    se = np.sqrt(np.diag(np.linalg.inv(info)))
    return np.array([r, k]), se[::-1]  # leaves in key order: rate, shape


# -- right-censored Weibull regression: scipy on the same likelihood in numpy ----------
def _weibull_data():
    rng = np.random.default_rng(4)
    n = 400
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    t = np.exp(X @ np.array([1.0, 0.5])) * rng.weibull(1.5, n)
    c = rng.exponential(np.exp(1.8), n)
    return {"X": X, "t": np.minimum(t, c), "event": (t <= c).astype(float)}


D_WEIBULL = _weibull_data()


def weibull_ll(p, d):
    k = jnp.exp(p["log_k"])
    z = (jnp.log(d["t"]) - d["X"] @ p["beta"]) * k
    return jnp.sum(d["event"] * (jnp.log(k) + z - jnp.log(d["t"])) - jnp.exp(z))


def _weibull_oracle():
    from scipy.optimize import minimize

    d = D_WEIBULL

    def nll(th):
        beta, k = th[:-1], np.exp(th[-1])
        z = (np.log(d["t"]) - d["X"] @ beta) * k
        return -np.sum(d["event"] * (np.log(k) + z - np.log(d["t"])) - np.exp(z))

    th = minimize(nll, np.zeros(3), method="Nelder-Mead",
                  options=dict(xatol=1e-12, fatol=1e-14, maxiter=20000, maxfev=40000)).x
    h = 1e-4  # central finite-difference Hessian of the numpy log-likelihood
    e = np.eye(3) * h
    hess = np.array([[(nll(th + e[i] + e[j]) - nll(th + e[i] - e[j]) - nll(th - e[i] + e[j])
                       + nll(th - e[i] - e[j])) / (4 * h * h) for j in range(3)] for i in range(3)])
    return th, np.sqrt(np.diag(np.linalg.inv(hess)))


# -- fault cases --------------------------------------------------------------------------
def saddle_ll(p, x):  # stationary at 0, a saddle: the start is exactly there
    return -p["a"] ** 2 + p["b"] ** 2 + 0.0 * jnp.sum(x)


def redundant_ll(p, x):  # only a + b enters: not identified
    return jnp.sum(stats.norm.logpdf(x, p["a"] + p["b"], 1.0))


_rng = np.random.default_rng(5)
X_SEP = np.column_stack([np.ones(60), np.sort(_rng.normal(size=60))])
Y_SEP = (X_SEP[:, 1] > 0).astype(float)  # perfectly separated


def nonfinite_start_ll(p, x):
    return jnp.sum(jnp.log(p["s"]) - x / p["s"])  # log of a negative start


PROBLEMS = [
    Problem("normal", normal_ll, {"mu": 0.0, "sigma": mj.Positive(1.0)}, X_NORMAL,
            oracle=_normal_oracle, rtol=1e-9),
    Problem("poisson", poisson_ll, {"rate": mj.Positive(1.0)}, Y_POISSON,
            oracle=_poisson_oracle, rtol=1e-9),
    Problem("logistic", logit_ll, {"beta": np.zeros(3)}, {"X": X_LOGIT, "y": Y_LOGIT},
            oracle=_logit_oracle, rtol=1e-7),
    Problem("gamma", gamma_ll, {"shape": mj.Positive(1.0), "rate": mj.Positive(1.0)}, X_GAMMA,
            oracle=_gamma_oracle, rtol=1e-8),
    Problem("weibull", weibull_ll, {"beta": np.zeros(2), "log_k": 0.0}, D_WEIBULL,
            oracle=_weibull_oracle, rtol=2e-5),
    Problem("bounded", normal_ll, {"mu": mj.Bounded(0.0, 10.0, 1.0), "sigma": mj.Positive(1.0)},
            X_NORMAL, oracle=_normal_oracle, rtol=1e-9),
    Problem("saddle", saddle_ll, {"a": 0.0, "b": 0.0}, X_NORMAL, status=mj.Status.NOT_MAXIMUM),
    Problem("not_identified", redundant_ll, {"a": 0.0, "b": 0.0}, X_NORMAL,
            status=mj.Status.NOT_IDENTIFIED),
    Problem("separation", logit_ll, {"beta": np.zeros(2)}, {"X": X_SEP, "y": Y_SEP},
            status=mj.Status.DIVERGING),
    Problem("nonfinite_start", nonfinite_start_ll, {"s": mj.Bounded(-5.0, 5.0, -1.0)},
            X_GAMMA, status=mj.Status.NONFINITE_START),
]

BY_NAME = {p.name: p for p in PROBLEMS}
