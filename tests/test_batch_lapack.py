"""The LAPACK-free rewrite that keeps fit_batch out of jaxlib's CPU deadlock (issue 16)."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg as sla

import mlejax as mj
from mlejax.backends._lapack import _has_target, lapack_free, needs_lapack_guard


def _spd(rng, n):
    a = rng.normal(size=(n, n))
    return a @ a.T + n * np.eye(n)


@pytest.mark.parametrize("n", [1, 2, 5, 12])
def test_substitutes_match_scipy(n):
    rng = np.random.default_rng(n)
    a, b, br = _spd(rng, n), rng.normal(size=(n, 3)), rng.normal(size=(3, n))
    up = np.triu(rng.normal(size=(n, n))) + 3 * np.eye(n)

    def f(a, b, br, up):
        lo = jnp.linalg.cholesky(a)
        outs = [lo, jnp.linalg.solve(a, b), jnp.linalg.slogdet(a)[1]]
        for m, lower in ((lo, True), (up + jnp.tril(jnp.full((n, n), 7.0), -1), False)):
            for trans in (0, 1):
                for unit in (False, True):
                    outs.append(jax.scipy.linalg.solve_triangular(m, b, trans=trans, lower=lower,
                                                                  unit_diagonal=unit))
                    outs.append(jax.lax.linalg.triangular_solve(m, br, left_side=False, lower=lower,
                                                                transpose_a=bool(trans),
                                                                unit_diagonal=unit))
        return outs

    got = jax.jit(lapack_free(f))(a, b, br, up)
    lo = np.linalg.cholesky(a)
    np.testing.assert_allclose(got[0], lo, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[1], np.linalg.solve(a, b), rtol=1e-10)
    np.testing.assert_allclose(got[2], np.linalg.slogdet(a)[1], rtol=1e-12)
    k = 3
    for m, lower in ((lo, True), (up, False)):
        for trans in (0, 1):
            for unit in (False, True):
                ref = sla.solve_triangular(m, b, trans=trans, lower=lower, unit_diagonal=unit)
                np.testing.assert_allclose(got[k], ref, rtol=1e-10, atol=1e-12)
                mm = m.copy()
                if unit:
                    np.fill_diagonal(mm, 1.0)
                op = mm.T if trans else mm
                np.testing.assert_allclose(np.asarray(got[k + 1]) @ op, br, rtol=1e-10, atol=1e-10)
                k += 2
    jaxpr = jax.make_jaxpr(lapack_free(f))(a, b, br, up).jaxpr
    assert not _has_target(jaxpr)
    assert _has_target(jax.make_jaxpr(f)(a, b, br, up).jaxpr)


def test_not_positive_definite_gives_nan_like_lapack():
    a = -_spd(np.random.default_rng(0), 3)
    got = np.asarray(jax.jit(lapack_free(jnp.linalg.cholesky))(a))
    lower = np.tril_indices(3)
    assert np.isnan(got[lower]).all() and (np.triu(got, 1) == 0).all()


def test_rewrite_inside_loops_vmap_and_derivatives():
    rng = np.random.default_rng(1)
    a = np.stack([_spd(rng, 4), 2 * _spd(rng, 4)])
    b = rng.normal(size=(2, 4, 3))

    def g(a, b):
        def body(c):
            i, x = c
            lo = jnp.linalg.cholesky(a * (1.0 + i))
            return i + 1, x + jax.scipy.linalg.solve_triangular(lo, b, lower=True)

        hess = jax.hessian(lambda s: jnp.sum(jax.scipy.stats.multivariate_normal.logpdf(b.T[:, :4], jnp.zeros(4),
                                                                                         a * s)))(1.5)
        return jax.lax.while_loop(lambda c: c[0] < 3, body, (0, jnp.zeros_like(b)))[1], hess

    ref = jax.jit(jax.vmap(g))(a, b)  # LAPACK's kernels (compiled: eagerly each op compiles on its own)
    got = jax.jit(jax.vmap(lapack_free(g)))(a, b)
    for r, x in zip(ref, got):
        np.testing.assert_allclose(x, r, rtol=1e-10, atol=1e-12)


def test_guard_applies_on_affected_cpu_jaxlib_only():
    import jaxlib

    major_minor = tuple(int(p) for p in jaxlib.__version__.split(".")[:2])
    expect = (0, 10) <= major_minor < (0, 11) or jaxlib.__version__.startswith("0.11.0")
    assert needs_lapack_guard("cpu") == expect
    assert not needs_lapack_guard("gpu")


def test_fit_batch_gp_matches_single_fits():
    n, b = 12, 6
    t = np.linspace(0, 3, n)
    rng = np.random.default_rng(2)
    k0 = np.exp(-0.5 * (t[:, None] - t[None, :]) ** 2) + 0.1 * np.eye(n)
    ys = rng.multivariate_normal(np.zeros(n), k0, size=b)

    def gp(p, y):
        k = p["amp"] * jnp.exp(-0.5 * (t[:, None] - t[None, :]) ** 2 / p["ls"] ** 2)
        lo = jnp.linalg.cholesky(k + p["noise"] * jnp.eye(n))
        a = jax.scipy.linalg.solve_triangular(lo, y, lower=True)
        return -0.5 * a @ a - jnp.sum(jnp.log(jnp.diag(lo)))

    init = {"ls": mj.Positive(1.0), "amp": mj.Positive(1.0), "noise": mj.Positive(0.5)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a fit that does not converge is compared below only if it does
        res = mj.fit_batch(gp, init, ys)
    for i in (0, b - 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            one = mj.fit(gp, init, ys[i])
        assert one.converged and res.converged[i]
        np.testing.assert_allclose(res.params["ls"][i], one.params["ls"], rtol=1e-6)
        np.testing.assert_allclose(res.stderr["noise"][i], one.stderr["noise"], rtol=1e-5)

