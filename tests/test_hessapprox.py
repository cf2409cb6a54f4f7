"""Approximate variances without a dense Hessian (issue 14 part 4): the diagonal and
Lanczos approximations of ``FitResult.stderr_approx`` against numpy on the dense
Hessian (computed independently with ``jax.hessian``), their labels, their errors."""

import dataclasses
import functools
import warnings

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

import mlejax as mj


def _het_loglik(p, d):
    """Heteroscedastic linear regression: mean X b, log standard deviation Z g."""
    return jnp.sum(jax.scipy.stats.norm.logpdf(d["y"], d["X"] @ p["b"], jnp.exp(d["Z"] @ p["g"])))


@functools.cache
def _het():
    """A fit with k = 30 free parameters (24 + 6) and its dense information by numpy."""
    rng = np.random.default_rng(14)
    n = 200
    X = rng.normal(size=(n, 24)) * np.geomspace(1.0, 30.0, 24)  # a spread-out spectrum
    Z = np.column_stack([np.ones(n), rng.normal(size=(n, 5))])
    y = X @ rng.normal(size=24) / 10 + np.exp(Z @ np.r_[-0.5, 0.2 * rng.normal(size=5)]) * rng.normal(size=n)
    res = mj.fit(_het_loglik, {"b": np.zeros(24), "g": np.zeros(6)}, {"X": X, "y": y, "Z": Z}, cov=None)
    assert res.converged and res.stderr is None
    flat, unravel = jax.flatten_util.ravel_pytree(res.params)
    info = -np.asarray(jax.jit(jax.hessian(lambda v: _het_loglik(unravel(v), res._data)))(flat))
    assert np.linalg.eigvalsh(info).min() > 0
    return res, info


def test_lanczos_at_full_rank_is_the_dense_inverse():
    res, info = _het()
    a = res.stderr_approx("lanczos", rank=res.nparams)
    exact = np.diag(np.linalg.inv(info))
    np.testing.assert_allclose(a.variance, exact, rtol=1e-8)
    np.testing.assert_allclose(np.r_[a.stderr["b"], a.stderr["g"]], np.sqrt(exact), rtol=1e-8)
    np.testing.assert_allclose(a.eigenvalues, np.linalg.eigvalsh(info)[::-1], rtol=1e-8)
    assert not a.indefinite and res.stderr is None  # the fit's own stderr is untouched


def test_lanczos_low_rank_captures_the_largest_eigenpairs():
    res, info = _het()
    a = res.stderr_approx("lanczos", rank=3)  # 16 steps on k = 30
    lam, vec = np.linalg.eigh(info)
    lam, vec = lam[::-1][:3], vec[:, ::-1][:, :3]
    np.testing.assert_allclose(a.eigenvalues, lam, rtol=1e-8)
    np.testing.assert_allclose(np.abs(np.sum(a.eigenvectors * vec, axis=0)), 1.0, rtol=1e-6)
    assert np.all(a.residuals < 1e-6 * lam)
    # the documented covariance: V diag(1/lam) V' + (1 - V V') / lam_3, from numpy's eigenpairs
    w = vec**2
    np.testing.assert_allclose(a.variance, w @ (1 / lam) + (1 - w.sum(1)) / lam[-1], rtol=1e-6)
    assert np.all(a.variance <= np.diag(np.linalg.inv(info)))  # a lower bound


def test_diag_is_one_over_the_information_diagonal_and_a_lower_bound():
    res, info = _het()
    d = res.stderr_approx("diag")
    np.testing.assert_allclose(d.variance, 1 / np.diag(info), rtol=1e-12)
    np.testing.assert_allclose(d.eigenvalues, np.diag(info), rtol=1e-12)
    assert np.all(d.variance <= np.diag(np.linalg.inv(info)))
    assert d.rank is None and d.eigenvectors is None and not d.indefinite
    # random probes: unbiased for I_ii with variance sum_{l != i} I_il^2 / m
    m = 400
    p = res.stderr_approx("diag", probes=m, key=jax.random.key(1))
    sd = np.sqrt((np.sum(info**2, axis=1) - np.diag(info) ** 2) / m)
    assert np.all(np.abs(p.eigenvalues - np.diag(info)) < 5 * sd)


def test_probes_are_exact_for_a_diagonal_information():
    c = np.array([0.5, 2.0, 3.0, 7.0, 11.0])
    ll = lambda p, x: -0.5 * jnp.sum(x * (p["w"] - 1.0) ** 2)  # noqa: E731  I = diag(c)
    res = mj.fit(ll, {"w": np.zeros(5)}, c, cov=None, nobs=100)
    np.testing.assert_allclose(res.stderr_approx("diag", probes=3).variance, 1 / c, rtol=1e-12)


def test_labelled_as_an_approximation():
    res, _ = _het()
    a = res.stderr_approx("lanczos", rank=3)
    assert isinstance(a, mj.ApproxStderr) and a.method == "lanczos" and a.rank == 3
    assert a.approximation.startswith("APPROXIMATION (Lanczos, rank 3 of 30, 16 steps)")
    text = a.summary(max_rows=5)
    assert text.startswith("mlejax APPROXIMATE standard errors (method 'lanczos', rank 3; not exact)")
    assert "APPROXIMATION" in text and "25 more parameters" in text and "b[5]" not in text
    assert repr(a) == a.summary() and "lower bound" in repr(a)
    d = res.stderr_approx("diag")
    assert d.approximation.startswith("APPROXIMATION (diagonal)") and "APPROXIMATE" in repr(d)
    leaves = jax.tree_util.tree_leaves(d)  # a pytree; the labels are static metadata
    assert all(not isinstance(x, str) for x in leaves)


def test_not_positive_definite_gives_nan_and_flag():
    ll = lambda p, x: -p["a"] ** 2 + p["b"] ** 2 - p["b"] ** 4  # noqa: E731  I = diag(2, -2) at 0
    with pytest.warns(mj.ConvergenceWarning, match="iteration limit"):
        res = mj.fit(ll, {"a": 0.0, "b": 0.0}, None, cov=None, maxiter=0)
    d = res.stderr_approx("diag")
    assert d.indefinite and d.variance[0] == 0.5 and np.isnan(d.variance[1])
    a = res.stderr_approx("lanczos", rank=1)
    assert a.indefinite and np.all(np.isnan(a.variance)) and a.eigenvalues[0] == pytest.approx(2.0)
    assert "not positive definite" in a.summary()


@pytest.mark.parametrize("kw, err, match", [
    ({"method": "eig"}, ValueError, "method='eig' is not known"),
    ({"method": "lanczos"}, ValueError, "needs rank="),
    ({"method": "lanczos", "rank": 0}, ValueError, r"rank=0 is out of range.*k = 30"),
    ({"method": "lanczos", "rank": 31}, ValueError, r"rank=31 is out of range"),
    ({"method": "lanczos", "rank": 2.0}, TypeError, "must be an integer"),
    ({"method": "lanczos", "rank": 5, "steps": 4}, ValueError, r"steps=4 is out of range.*at least rank = 5"),
    ({"method": "lanczos", "rank": 5, "probes": 4}, ValueError, "probes= is for method='diag'"),
    ({"method": "diag", "rank": 5}, ValueError, "rank= is for method='lanczos'"),
    ({"method": "diag", "probes": 0}, ValueError, "probes=0 is out of range"),
])
def test_bad_arguments(kw, err, match):
    res, _ = _het()
    with pytest.raises(err, match=match):
        res.stderr_approx(**kw)


def test_fits_without_the_data_needed():
    res, _ = _het()
    with pytest.raises(ValueError, match="does not carry its model"):
        dataclasses.replace(res, _loglik=None).stderr_approx("diag")
    streamed = dataclasses.replace(res, _data=mj.stream.from_arrays(res._data, chunk_size=50))
    with pytest.raises(ValueError, match="streamed.*Pass data="):
        streamed.stderr_approx("diag")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = streamed.stderr_approx("diag", data=res._data)  # the data given back: it works
    assert np.all(np.isfinite(d.variance))
