"""The trust-region Newton solver (issue 13): the exact subproblem against brute force,
negative curvature used from a saddle (closed-form maximum), a hard NIST start against
the certified values, and honesty (never SUCCESS at a wrong or non-finite point)."""

import importlib.util
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mlejax as mj
from mlejax.solvers._base import RUNNING, Step
from mlejax.solvers._trust import Point, TrustRegion, TrustState, trust_subproblem

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("nist_strd", ROOT / "benchmarks" / "nist_strd.py")
nist = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nist)


# -- the subproblem: min g'q + q'diag(w)q/2 over |q| <= r, against a brute-force search ----


def _brute_force(w, g, r):
    """The minimum of a quadratic over a disc: its stationary point if that is a minimum
    inside the disc, else the best of a dense grid on the circle."""
    t = np.linspace(0.0, 2 * np.pi, 200001)
    q = r * np.stack([np.cos(t), np.sin(t)])
    best = (g @ q + 0.5 * (w[:, None] * q**2).sum(0)).min()
    if np.all(w > 0) and np.linalg.norm(g / w) <= r:
        best = min(best, -0.5 * np.sum(g**2 / w))
    return best


_compiled_subproblem = jax.jit(lambda w, g, r: trust_subproblem(jnp, w, g, r))


CASES = {
    "interior (positive definite, short step)": ([1.0, 2.0], [0.3, -0.2], 1.0),
    "boundary (positive definite, long step)": ([1.0, 2.0], [3.0, -4.0], 0.5),
    "indefinite": ([-1.5, 2.0], [0.2, 0.7], 1.0),
    "hard case (gradient orthogonal to negative curvature)": ([-1.0, 3.0], [0.0, 0.6], 2.0),
    "nearly hard": ([-1.0, 3.0], [1e-9, 0.6], 2.0),
    "zero gradient at a saddle": ([-0.5, 1.0], [0.0, 0.0], 0.7),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("xp", [np, jnp], ids=["host", "compiled"])
def test_subproblem_matches_brute_force(case, xp):
    w, g, r = (np.asarray(a, float) for a in CASES[case])
    q, lam = trust_subproblem(np, w, g, r) if xp is np else _compiled_subproblem(w, g, r)
    q = np.asarray(q)
    model = g @ q + 0.5 * np.sum(w * q**2)
    assert np.linalg.norm(q) <= r * (1 + 1e-8)
    best = _brute_force(w, g, r)
    assert model <= best + 1e-9 * max(1.0, abs(best)), (model, best)
    if w[0] < 0:  # negative curvature: the step reaches the boundary (also at a saddle)
        assert np.linalg.norm(q) == pytest.approx(r, rel=1e-8)
        assert float(lam) >= -w[0] - 1e-12


# -- negative curvature used: start exactly at a saddle ------------------------------------

X_POS = np.random.default_rng(3).gamma(3.0, 1.0, size=50)


def saddle_ll(p, x):
    # max at a = +-sqrt(mean x), b = 0.5; at a = 0 the gradient in a is 0 and the
    # curvature in a is -4 sum(x) < 0 in -loglik: a saddle.
    return -jnp.sum((p["a"] ** 2 - x) ** 2) - (p["b"] - 0.5) ** 2


def test_negative_curvature_leaves_a_saddle_for_the_closed_form_maximum():
    init = {"a": 0.0, "b": 2.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mj.MLEJaxWarning)
        newton = mj.fit(saddle_ll, init, X_POS)
    assert not newton.converged  # Newton cannot leave a = 0 (flags it)
    res = mj.fit(saddle_ll, init, X_POS, method="trust-region")
    assert res.converged, res.message
    np.testing.assert_allclose(abs(float(res.params["a"])), np.sqrt(X_POS.mean()), rtol=1e-10)
    np.testing.assert_allclose(float(res.params["b"]), 0.5, atol=1e-10)
    a2 = X_POS.mean()
    np.testing.assert_allclose(float(res.loglik), -np.sum((a2 - X_POS) ** 2), rtol=1e-12)


def test_compiled_and_batched_fits_agree_with_the_closed_form():
    data = np.stack([X_POS, 2.0 * X_POS])
    init = {"a": jnp.zeros(2), "b": jnp.full(2, 2.0)}
    res = mj.fit_batch(saddle_ll, init, data, method="trust-region", init_axis=0)
    assert np.all(np.asarray(res.converged))
    np.testing.assert_allclose(np.abs(np.asarray(res.params["a"])), np.sqrt(data.mean(1)), rtol=1e-10)


# -- a hard NIST start: Newton flags, the trust region finds the certified answer -----------


def test_eckerle4_start1_reaches_the_certified_values():
    d = nist.load("Eckerle4")
    ll, start, data = nist.concentrated_loglik("Eckerle4"), d["starts"][0], (d["x"], d["y"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mj.MLEJaxWarning)
        newton = mj.fit(ll, start, data)
    assert not newton.converged  # plain Newton stops and says so
    res = mj.fit(ll, start, data, method="trust-region")
    assert res.converged, res.message
    for k, v in d["certified"].items():
        assert nist.lre(res.params[k], v) >= 6, (k, float(res.params[k]), v)


def test_merged_exponentials_second_pass_reaches_the_certified_values():
    # Lanczos3 start 2: the first pass converges where two of the three exponential rates
    # merge (a flat direction, no strict maximum); the second pass from the start reaches
    # NIST's certified values.
    d = nist.load("Lanczos3")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mj.MLEJaxWarning)  # NOT_SMOOTH: the check's own limit
        res = mj.fit(nist.concentrated_loglik("Lanczos3"), d["starts"][1], (d["x"], d["y"]),
                     method="trust-region")
    for k, v in d["certified"].items():
        assert nist.lre(res.params[k], v) >= 6, (k, float(res.params[k]), v)
    assert int(res.status) in (int(mj.Status.SUCCESS), int(mj.Status.NOT_SMOOTH)), res.message


def _point(x, f):
    return Point(np.array([x]), np.float64(f), np.array([0.0]), np.array([[1.0]]))


def test_second_pass_restarts_at_a_flat_stop_and_keeps_the_better_end():
    # The rule, on hand-made ends (f = -loglik): a first-pass SUCCESS at a flat point
    # restarts from the start; a second-pass end worse than the first's returns the first.
    solver, succ = TrustRegion(), int(mj.Status.SUCCESS)
    start, flat_end = _point(0.0, 5.0), _point(1.0, 2.0)
    state = TrustState(flat_end.hess, np.float64(8.0), np.array([3.0]), np.bool_(False), start, start)
    st = solver.second_pass(np, Step(flat_end.x, flat_end.f, flat_end.g, state, succ), np.bool_(True))
    assert int(st.code) == RUNNING and float(st.x[0]) == 0.0 and bool(st.state.second)
    assert float(st.state.radius) == 1.0 and float(st.state.first.f) == 2.0
    worse = _point(2.0, 3.0)  # the second pass stops at a lower log-likelihood (MAX_ITER-like code)
    back = solver.second_pass(np, Step(worse.x, worse.f, worse.g, st.state, int(mj.Status.PRECISION_LOSS)),
                              np.bool_(False))
    assert int(back.code) == succ and float(back.x[0]) == 1.0 and float(back.f) == 2.0
    better = _point(3.0, 1.0)
    kept = solver.second_pass(np, Step(better.x, better.f, better.g, st.state, succ), np.bool_(False))
    assert int(kept.code) == succ and float(kept.x[0]) == 3.0
    # A strict maximum in the first pass is final: no second pass.
    done = solver.second_pass(np, Step(flat_end.x, flat_end.f, flat_end.g, state, succ), np.bool_(False))
    assert int(done.code) == succ and float(done.x[0]) == 1.0 and not bool(done.state.second)


# -- honesty ------------------------------------------------------------------------------


def test_hard_nist_starts_it_cannot_solve_are_flagged_not_success():
    # MGH10 start 1 (b3 runs along a curved valley) and Lanczos1 start 1 cut off in its
    # second pass (the first ends where two exponentials merge): wrong answers, so the
    # status must not be SUCCESS.
    for name, maxiter in (("MGH10", 60), ("Lanczos1", 200)):
        d = nist.load(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mj.MLEJaxWarning)
            res = mj.fit(nist.concentrated_loglik(name), d["starts"][0], (d["x"], d["y"]),
                         method="trust-region", maxiter=maxiter)
        digits = min(nist.lre(res.params[k], v) for k, v in d["certified"].items())
        assert digits < 6 and not res.converged, (name, res.message)


def nan_region_ll(p, x):
    # log of an unconstrained scale: NaN for s <= 0; max at s = sqrt(mean x^2)
    return -x.size * jnp.log(p["s"]) - jnp.sum(x**2) / (2 * p["s"] ** 2)


def test_steps_into_nan_are_never_accepted():
    x = np.random.default_rng(4).normal(0.0, 0.01, size=30)
    res = mj.fit(nan_region_ll, {"s": 1.0}, x, method="trust-region")
    assert np.isfinite(float(res.loglik)) and float(res.params["s"]) > 0
    assert res.converged, res.message
    np.testing.assert_allclose(float(res.params["s"]), np.sqrt(np.mean(x**2)), rtol=1e-10)


def test_unbounded_likelihood_is_not_success():
    res_warn = pytest.warns(mj.MLEJaxWarning)
    with res_warn:
        res = mj.fit(lambda p, x: jnp.sum(x) * p["m"] + 0.1 * p["m"] ** 3, {"m": 0.5},
                     np.ones(5), method="trust-region", maxiter=100)
    assert not res.converged
