"""mj.glm's X'WX Hessian (one matrix product, ``hessian="xwx"``; the default for large designs) against
autodiff's generic Hessian of the same log-likelihood (``hessian="autodiff"``), for
every model and link ``mj.glm`` accepts, with weights and offsets; and the data
derivatives (plain autodiff) of the structured log-likelihood against finite
differences. The numbers themselves are checked against statsmodels in test_glm.py."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mlejax as mj
from mlejax.models import _glm

N = 60
RNG = np.random.default_rng(7)
U = RNG.uniform(0.2, 1.0, N)
X = np.column_stack([np.ones(N), U, RNG.uniform(0.0, 1.0, N)])
MU = 1.0 + 2.0 * U  # positive: valid for the identity, log and inverse links
W = RNG.integers(0, 4, N).astype(float)  # frequency weights, some rows 0
OFFSET = 0.05 * RNG.normal(size=N)
RESPONSES = {
    "linear": MU + 0.3 * RNG.normal(size=N),
    "poisson": RNG.poisson(MU).astype(float),
    "negbin": RNG.negative_binomial(3.0, 3.0 / (3.0 + MU)).astype(float),
    "gamma": RNG.gamma(4.0, MU / 4.0),
    "logit": (RNG.random(N) < 1 / (1 + np.exp(1.5 - 2.5 * U))).astype(float),
}
RESPONSES["probit"] = RESPONSES["logit"]
CASES = [(m, lnk) for m in ("linear", "poisson", "negbin", "gamma") for lnk in ("identity", "log", "inverse")]
CASES += [("logit", None), ("probit", None), ("binomial", None)]


def _flat(tree):
    return np.concatenate([np.ravel(np.asarray(a)) for a in jax.tree_util.tree_leaves(tree)])


def _fit(model, link, hessian):
    if model == "binomial":
        trials = 1 + (np.arange(N) % 4)
        y = np.minimum(RESPONSES["poisson"], trials)
        return mj.glm(y, X, model, trials=trials, weights=W, hessian=hessian)
    off = None if model in ("logit", "probit") else OFFSET
    return mj.glm(RESPONSES[model], X, model, link=link, weights=W, offset=off, hessian=hessian)


@pytest.mark.parametrize("model, link", CASES)
def test_xwx_equals_autodiff(model, link):
    a, b = _fit(model, link, "xwx"), _fit(model, link, "autodiff")
    assert int(a.status) == int(b.status) == int(mj.Status.SUCCESS), (a.message, b.message)
    np.testing.assert_allclose(_flat(a.params), _flat(b.params), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_flat(a.stderr), _flat(b.stderr), rtol=1e-10, atol=1e-12)
    assert float(a.loglik) == pytest.approx(float(b.loglik), rel=1e-12, abs=1e-10)
    assert a.names == b.names


def test_sandwich_scores_equal_autodiff():
    a = mj.glm(RESPONSES["poisson"], X, "poisson", cov="sandwich", hessian="xwx")
    b = mj.glm(RESPONSES["poisson"], X, "poisson", cov="sandwich", hessian="autodiff")
    np.testing.assert_allclose(_flat(a.stderr), _flat(b.stderr), rtol=1e-10)


def test_derivatives_in_the_data_match_finite_differences():
    """Derivatives in y, X, offset or w fall back to plain autodiff: checked by central
    differences."""
    response, link = _glm.MODELS["negbin"]
    ll = _glm.glm_loglik(response, _glm.LINKS[link])
    params = {"beta": jnp.array([0.3, 0.5, -0.2]), "alpha": jnp.asarray(0.7)}
    data = tuple(jnp.asarray(a) for a in (RESPONSES["negbin"], X, OFFSET, W + 0.5))
    grads = jax.jit(jax.grad(lambda d: ll(params, d)))(data)
    value = jax.jit(lambda d: ll(params, d))
    h = 1e-6
    for leaf in range(1, 4):
        e = jnp.zeros_like(data[leaf]).ravel().at[7].set(h).reshape(data[leaf].shape)
        up = tuple(d + e if i == leaf else d for i, d in enumerate(data))
        down = tuple(d - e if i == leaf else d for i, d in enumerate(data))
        fd = (value(up) - value(down)) / (2 * h)
        assert float(grads[leaf].ravel()[7]) == pytest.approx(float(fd), rel=1e-6, abs=1e-8)
