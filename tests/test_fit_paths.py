"""One fit, two paths: the host-driven fit (only the model's derivative kernel compiled)
and the compiled fit (the whole loop in one program, what runs under jit/vmap) give the
same answers; the solver protocol is open; convergence is scale-free."""

import dataclasses
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from problems import BY_NAME, PROBLEMS
from test_batch_compile import _compiled

import mlejax as mj
from mlejax import _fit
from mlejax._constraints import parametrize
from mlejax._observations import observations
from mlejax.solvers import (
    LevenbergMarquardt,
    Newton,
    ProposeAccept,
    Solver,
    Step,
    make_solver,
    secant_decrement,
)

FIELDS = ("params", "stderr", "cov", "information", "loglik", "condition_number", "x",
          "null_vector")


def _both_paths(problem, cov="observed", log_prior=None, tol=1e-10, maxiter=200):
    ll = _fit.objective_loglik(problem.loglik, log_prior)
    spec, dyn = parametrize(problem.init)
    data = _fit.prepare_data(problem.data)
    n, obs = observations(data)
    static = _fit.core_static(ll, spec, Newton(), cov, n, None, True, obs)
    host, _, _ = _fit.host_fit(dyn, jax.device_put(data), tol, maxiter, None, **static)
    dtype = dyn.values[0].dtype
    comp, _ = _fit._core_jit(dyn, data, jnp.asarray(tol, dtype), jnp.asarray(maxiter, jnp.int32),
                             None, **static)
    return host, comp


def _least_eigengap(info):
    """The gap between the two least eigenvalues of the correlation-scaled information
    (its largest is about 1): the null vector, their eigenvector, is determined only up
    to rounding divided by this gap (Davis-Kahan)."""
    info = np.asarray(info)
    d = np.sqrt(np.abs(np.diag(info)))
    w = np.linalg.eigvalsh(info / np.outer(d, d))
    return w[1] - w[0] if len(w) > 1 else np.inf


def _assert_same(host, comp):
    # the final gradient is rounding noise at an optimum: equal on its own scale only
    np.testing.assert_allclose(host.grad_norm, comp.grad_norm, rtol=1e-6, atol=1e-9)
    assert int(host.status) == int(comp.status)
    assert int(host.n_iter) == int(comp.n_iter)
    for name in ("hessian_not_negdef", "not_identified", "ill_conditioned", "params_at_bound",
                 "converged"):
        np.testing.assert_array_equal(getattr(host, name), getattr(comp, name), err_msg=name)
    for name in FIELDS:
        a = np.concatenate([np.ravel(v) for v in jax.tree_util.tree_leaves(getattr(host, name))])
        b = np.concatenate([np.ravel(v) for v in jax.tree_util.tree_leaves(getattr(comp, name))])
        if name == "null_vector":  # an eigenvector: its sign is arbitrary
            if _least_eigengap(comp.information) < 1e-8:
                continue  # a repeated least eigenvalue: any unit vector of its eigenspace is right
            a, b = np.abs(a), np.abs(b)
        # 1e-12 relative; entries that are zero up to rounding compare on the array's scale
        atol = 1e-12 * np.max(np.abs(b[np.isfinite(b)]), initial=0.0) if name != "x" else 0.0
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=atol, equal_nan=True, err_msg=name)


@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: p.name)
def test_host_and_compiled_paths_agree(problem):
    host, comp = _both_paths(problem)
    assert int(host.status) == problem.status, mj.Status(int(host.status))
    _assert_same(host, comp)


@pytest.mark.parametrize("cov", ["opg", "sandwich"])
def test_paths_agree_on_robust_covariances(cov):
    _assert_same(*_both_paths(BY_NAME["logistic"], cov=cov))


def test_paths_agree_on_a_map_fit():
    def log_prior(p):
        return -0.5 * jnp.sum(p["beta"] ** 2)

    _assert_same(*_both_paths(BY_NAME["logistic"], log_prior=log_prior))


@pytest.mark.parametrize("problem", [p for p in PROBLEMS if p.oracle], ids=lambda p: p.name)
def test_fit_matches_the_oracle(problem):
    res = mj.fit(problem.loglik, problem.init, problem.data)
    assert res.status == mj.Status.SUCCESS
    est, se = problem.oracle()
    flat = np.concatenate([np.ravel(v) for v in jax.tree_util.tree_leaves(res.params)])
    flat_se = np.concatenate([np.ravel(v) for v in jax.tree_util.tree_leaves(res.stderr)])
    np.testing.assert_allclose(flat, est, rtol=problem.rtol, atol=problem.rtol)
    np.testing.assert_allclose(flat_se, se, rtol=10 * problem.rtol)


@pytest.mark.parametrize("problem", [p for p in PROBLEMS if not p.oracle], ids=lambda p: p.name)
def test_fault_cases_report_their_status(problem):
    if problem.status == mj.Status.NONFINITE_START:
        with pytest.raises(ValueError, match="not finite at the starting values"):
            mj.fit(problem.loglik, problem.init, problem.data)
        return
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        res = mj.fit(problem.loglik, problem.init, problem.data)
    assert res.status == problem.status
    assert any(issubclass(x.category, mj.MLEJaxWarning) for x in w)
    assert np.all(np.isnan(res.cov))


def test_jit_and_vmap_run_the_compiled_fit(monkeypatch):
    p = BY_NAME["gamma"]
    ref = mj.fit(p.loglik, p.init, p.data)  # host-driven

    def refuse(*args, **kwargs):
        raise AssertionError("the host-driven fit ran under a JAX transformation")

    monkeypatch.setattr(_fit, "host_fit", refuse)
    jitted = jax.jit(lambda d: mj.fit(p.loglik, p.init, d))(p.data)
    for a, b in zip(jax.tree_util.tree_leaves(jitted.params), jax.tree_util.tree_leaves(ref.params)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert int(jitted.n_iter) == int(ref.n_iter)
    batch = np.stack([p.data, p.data[::-1] * 1.5])
    vm = jax.vmap(lambda d: mj.fit(p.loglik, p.init, d))(batch)
    assert vm.params["shape"].shape == (2,)
    np.testing.assert_allclose(vm.params["shape"][0], ref.params["shape"], rtol=1e-12)
    # a solver the host cannot drive (L-BFGS calls into optax) runs compiled too
    with pytest.raises(AssertionError, match="host-driven"):
        mj.fit(p.loglik, p.init, p.data)
    assert mj.fit(p.loglik, p.init, p.data, method="lbfgs").converged


def test_a_new_start_or_data_recompiles_nothing():
    traces = []

    def ll(p, x):
        traces.append(1)  # runs only when JAX traces the function
        return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], p["sigma"]))

    rng = np.random.default_rng(7)
    mj.fit(ll, {"mu": 0.0, "sigma": mj.Positive(1.0)}, rng.normal(size=50))
    n, size = len(traces), _fit._kernel_jit._cache_size()
    assert n > 0
    res = mj.fit(ll, {"mu": 2.0, "sigma": mj.Positive(3.0)}, rng.normal(size=50), tol=1e-9)
    assert res.converged
    assert len(traces) == n and _fit._kernel_jit._cache_size() == size


def test_a_first_fit_and_its_checks_compile_one_program(caplog):
    def ll(p, x):  # a new model: nothing of it is compiled yet
        return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], p["sigma"]))

    x = np.random.default_rng(11).normal(size=40)
    res, names = _compiled(caplog, lambda: mj.fit(ll, {"mu": 0.0, "sigma": mj.Positive(1.0)}, x))
    # the smoothness check's probes ran (a converged fit with standard errors) by the
    # gradient branch of the solver's own program
    assert res.converged and np.all(np.isfinite(res.stderr["sigma"]))
    assert names == ["jit(_host_kernel)"]


def test_the_gradient_branch_matches_finite_differences():
    p = BY_NAME["gamma"]
    ll = _fit.objective_loglik(p.loglik)
    spec, dyn = parametrize(p.init)
    data = _fit.prepare_data(p.data)
    n, obs = observations(data)
    static = _fit.core_static(ll, spec, Newton(), "observed", n, None, True, obs)
    host, _, gradients = _fit.host_fit(dyn, jax.device_put(data), 1e-10, 200, None, **static)
    # three points around the optimum
    points = np.asarray(host.x) + np.array([[0.1, -0.2], [-0.3, 0.05], [0.2, 0.2]])
    got = gradients(points)

    def f(u):  # the log-likelihood on the optimiser's scale, in numpy
        return float(p.loglik(spec.to_natural(jnp.asarray(u), dyn), data))

    h = 1e-5
    fd = np.array([[(f(u + h * e) - f(u - h * e)) / (2 * h) for e in np.eye(2)] for u in points])
    assert got.shape == (3, 2)
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-6 * np.max(np.abs(fd)))


# -- the solver protocol ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GradientAscent(Solver):
    """Plain gradient ascent with a fixed step, written only against ``obj.xp``."""

    rate: float = 0.002
    name = "gradient-ascent"
    default_tol = 1e-20
    default_maxiter = 5000
    host = True

    def init(self, obj, x, tol):
        f, g = obj.value_and_grad(x)
        return Step(x, f, g, None, mj.Status.RUNNING)

    def step(self, obj, x, f, g, state, tol):
        xp = obj.xp
        x_new = x - self.rate * g
        f_new, g_new = obj.value_and_grad(x_new)
        done = secant_decrement(xp, x_new - x, g_new - g, g_new) <= tol
        code = xp.where(done, int(mj.Status.SUCCESS), int(mj.Status.RUNNING))
        return Step(x_new, f_new, g_new, None, code)


def test_a_user_written_solver_runs_through_fit():
    p = BY_NAME["normal"]
    est, se = p.oracle()
    res = mj.fit(p.loglik, {"mu": 4.0, "sigma": 1.5}, p.data, method=GradientAscent())
    assert res.converged and res.method == "gradient-ascent"
    assert 10 < int(res.n_iter) < 5000  # the solver's own default maxiter and tol applied
    np.testing.assert_allclose([res.params["mu"], res.params["sigma"]], est, rtol=1e-9)
    np.testing.assert_allclose([res.stderr["mu"], res.stderr["sigma"]], se, rtol=1e-8)
    # the same solver inside the compiled fit (under jit), same answer
    jitted = jax.jit(lambda d: mj.fit(p.loglik, {"mu": 4.0, "sigma": 1.5}, d,
                                      method=GradientAscent()))(p.data)
    assert int(jitted.n_iter) == int(res.n_iter)
    np.testing.assert_allclose(jitted.params["mu"], res.params["mu"], rtol=1e-12)


@dataclasses.dataclass(frozen=True)
class ProposedAscent(ProposeAccept, GradientAscent):
    """The same gradient ascent in the one-evaluation form: ``init`` and ``step`` come
    from ``start``, ``propose`` and ``update`` (ProposeAccept's, first in the MRO)."""

    name = "proposed-ascent"

    def start(self, xp, x, d, tol):
        return Step(x, d.f, d.g, None, mj.Status.RUNNING)

    def propose(self, obj, x, f, g, state, tol):
        return x - self.rate * g, None

    def update(self, xp, x, f, g, state, tol, plan, x_new, d):
        done = secant_decrement(xp, x_new - x, d.g - g, d.g) <= tol
        return Step(x_new, d.f, d.g, None, xp.where(done, int(mj.Status.SUCCESS), int(mj.Status.RUNNING)))


def test_a_one_evaluation_solver_takes_the_same_steps_both_ways():
    """Host-driven (init/step from start/propose/update) and compiled (the start
    evaluated in the loop's first iteration): the same iterations as the classic form."""
    assert ProposedAscent.step is ProposeAccept.step and ProposedAscent.init is ProposeAccept.init
    p = BY_NAME["normal"]
    est, _ = p.oracle()
    init = {"mu": 4.0, "sigma": 1.5}
    classic = mj.fit(p.loglik, init, p.data, method=GradientAscent())
    host = mj.fit(p.loglik, init, p.data, method=ProposedAscent())
    jitted = jax.jit(lambda d: mj.fit(p.loglik, init, d, method=ProposedAscent()))(p.data)
    assert host.converged and int(host.n_iter) == int(classic.n_iter) == int(jitted.n_iter)
    np.testing.assert_allclose([host.params["mu"], host.params["sigma"]], est, rtol=1e-9)
    np.testing.assert_allclose(jitted.params["mu"], host.params["mu"], rtol=1e-12)
    stopped = jax.jit(lambda d: mj.fit(p.loglik, init, d, method=ProposedAscent(), maxiter=0))(p.data)
    assert int(stopped.n_iter) == 0 and int(stopped.status) == mj.Status.MAX_ITER
    np.testing.assert_allclose(stopped.params["mu"], 4.0)


def _gamma_log_scale(u, x):  # gammaln marks the model's evaluations in the program
    a, b = jnp.exp(u[0]), jnp.exp(u[1])
    return x.shape[0] * (a * jnp.log(b) - jax.scipy.special.gammaln(a)) + (a - 1.0) * jnp.sum(jnp.log(x)) - b * jnp.sum(x)


@pytest.mark.parametrize("method, cov", [("newton", "observed"), ("trust-region", "observed"), ("adam", None)])
def test_compiled_fit_evaluates_the_model_at_one_place(method, cov):
    """The start is evaluated in the loop's first iteration: the model (its value, gradient
    and Hessian) appears once in the compiled program, not once more before the loop."""
    x = np.random.default_rng(1).gamma(2.5, 1 / 1.5, size=50)
    solver = optax.adam(1e-2) if method == "adam" else method
    jaxpr = jax.make_jaxpr(lambda d: mj.fit(_gamma_log_scale, jnp.zeros(2), d, method=solver, cov=cov))(x)
    assert str(jaxpr).count("lgamma") == 1


def test_builtins_are_solver_instances():
    assert isinstance(make_solver("newton"), Solver)
    assert isinstance(make_solver("lbfgs"), Solver)
    assert issubclass(LevenbergMarquardt, Solver)
    with pytest.raises(TypeError, match="Solver instance"):
        mj.fit(BY_NAME["normal"].loglik, BY_NAME["normal"].init, BY_NAME["normal"].data,
               method=object())


# -- issue 11 item 8: convergence does not depend on the log-likelihood's size ------------


@pytest.mark.parametrize("method", ["newton", "lbfgs"])
def test_adding_a_constant_changes_nothing(method):
    p = BY_NAME["normal"]
    est, _ = p.oracle()
    plain = mj.fit(p.loglik, p.init, p.data, method=method)
    shifted = mj.fit(lambda q, x: p.loglik(q, x) - 1e13, p.init, p.data, method=method)
    for res in (plain, shifted):
        assert res.status == mj.Status.SUCCESS, res.message
        np.testing.assert_allclose([res.params["mu"], res.params["sigma"]], est, rtol=1e-9)
    np.testing.assert_allclose(shifted.stderr["mu"], plain.stderr["mu"], rtol=1e-6)


@pytest.mark.parametrize("method", ["newton", "lbfgs"])
def test_rescaling_a_parameter_changes_nothing(method):
    p = BY_NAME["normal"]
    est, _ = p.oracle()

    def ll_scaled(q, x):  # mu measured in thousandths
        return p.loglik({"mu": q["mu_k"] / 1000.0, "sigma": q["sigma"]}, x)

    res = mj.fit(ll_scaled, {"mu_k": 0.0, "sigma": mj.Positive(1.0)}, p.data, method=method)
    assert res.status == mj.Status.SUCCESS, res.message
    np.testing.assert_allclose(res.params["mu_k"] / 1000.0, est[0], rtol=1e-9)
