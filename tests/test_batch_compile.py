"""fit_batch's first call compiles one program: nothing eager before it, and the model's
exact natural-scale Hessian (needed only where the chain rule loses precision) in a
second program only when some fit needs it."""

import logging
import warnings

import jax
import jax.numpy as jnp
import numpy as np

import mlejax as mj


def _compiled(caplog, fn):
    """Run ``fn`` and return the names of the programs XLA compiled meanwhile."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="jax"), jax.log_compiles(True), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fn()
    names = [r.getMessage().split("Finished XLA compilation of ")[1].split(" in ")[0]
             for r in caplog.records if "Finished XLA compilation of" in r.getMessage()]
    return out, names


def test_default_call_compiles_exactly_one_program(caplog):
    def loglik(p, x):  # a new model: nothing of it is compiled yet
        return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], p["sigma"]))

    def start(x):  # a per-dataset start: traced, never run eagerly on dataset 0
        return {"mu": jnp.mean(x), "sigma": mj.Positive(jnp.std(x))}

    x = np.random.default_rng(3).normal(1.0, 2.0, size=(7, 23))  # shapes used nowhere else
    res, names = _compiled(caplog, lambda: mj.fit_batch(loglik, None, x, init_fn=start))
    assert names == ["jit(_run_chunks)"]
    np.testing.assert_allclose(res.params["mu"], x.mean(axis=1), rtol=1e-10)  # closed form
    np.testing.assert_allclose(res.params["sigma"], x.std(axis=1), rtol=1e-8)


def test_fits_on_a_bound_get_the_exact_information(caplog):
    """A rate of 1e-80 is numerically on the bound of mj.Positive: the chain rule from the
    log scale cannot give its information, the model's natural-scale Hessian must.
    Oracle: the Poisson information sum(y) / rate^2 at the start (maxiter=0)."""

    def loglik(rate, y):
        return jnp.sum(y * jnp.log(rate) - rate)

    y = np.random.default_rng(4).poisson(3.0, size=(3, 17)).astype(float)
    rates = np.array([1e-80, 2.0, 0.5])
    run = lambda: mj.fit_batch(loglik, mj.Positive(rates), y, init_axis=0, maxiter=0)  # noqa: E731
    res, names = _compiled(caplog, run)
    # the fit on the bound is rerun by a second program (the others are not rerun)
    assert [n for n in names if "_run_chunks" in n] == ["jit(_run_chunks)", "jit(_run_chunks)"]
    info = np.asarray(res.information)[:, 0, 0]
    np.testing.assert_allclose(info, y.sum(axis=1) / rates**2, rtol=1e-12)
    _, names = _compiled(caplog, run)
    assert names == []  # a second call compiles nothing
