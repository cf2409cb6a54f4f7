"""Hidden Markov models: brute-force enumeration, hmmlearn on the same data and
starting values, finite differences for the standard errors, EM invariants."""

import itertools
import warnings

import hmmlearn.hmm as hl
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import statsmodels.api as sm
from hmmlearn.base import ConvergenceMonitor
from scipy import stats
from scipy.special import logsumexp

import mlejax as mj
from mlejax.hmm import _forward

RNG = np.random.default_rng(12)


# -- brute force ---------------------------------------------------------------------------


def brute(pi, A, logb):
    """Every state path of one sequence: loglik, posteriors (T, K), Viterbi path, xi sum."""
    t, k = logb.shape
    paths = list(itertools.product(range(k), repeat=t))
    lps = np.array([
        np.log(pi[s[0]]) + logb[0, s[0]] + sum(np.log(A[s[i - 1], s[i]]) + logb[i, s[i]] for i in range(1, t))
        for s in paths
    ])
    ll = logsumexp(lps)
    w = np.exp(lps - ll)
    g = np.zeros((t, k))
    xi = np.zeros((k, k))
    for s, wi in zip(paths, w):
        g[np.arange(t), s] += wi
        for i in range(1, t):
            xi[s[i - 1], s[i]] += wi
    return ll, g, np.array(paths[int(np.argmax(lps))]), xi


def _random_hmm(k=3, seed=0):
    r = np.random.default_rng(seed)
    return r.dirichlet(np.ones(k)), r.dirichlet(np.ones(k), size=k)


@pytest.mark.parametrize("fb", [_forward.forward_backward, _forward.forward_backward_parallel])
def test_forward_backward_equals_enumeration_with_ragged_lengths(fb):
    pi, A = _random_hmm()
    lengths = [7, 5, 2]
    logb = RNG.normal(size=(3, 7, 3)) * 2
    mask = np.arange(7)[None] < np.array(lengths)[:, None]
    args = (jnp.array(pi), jnp.array(A), jnp.array(logb), jnp.array(mask))
    # compiled, and read back as numpy: run eagerly, each scan step's ops compile one by one
    post = jax.tree_util.tree_map(np.asarray, jax.jit(fb)(*args))
    path = np.asarray(jax.jit(_forward.viterbi)(*args)[0])
    xis = 0
    for n, t in enumerate(lengths):
        ll, g, best, xi = brute(pi, A, logb[n, :t])
        xis = xis + xi
        np.testing.assert_allclose(post.loglik[n], ll, rtol=1e-12)
        np.testing.assert_allclose(post.gamma[n, :t], g, atol=1e-12)
        assert np.all(np.asarray(post.gamma[n, t:]) == 0)
        np.testing.assert_array_equal(path[n, :t], best)
    np.testing.assert_allclose(post.trans, xis, atol=1e-12)


def _poisson_params(k=3, seed=1):
    pi, A = _random_hmm(k, seed)
    return {"startprob": pi, "transmat": A, "rate": np.array([1.0, 4.0, 9.0])[:k]}


def _frozen_fit(model, x, params, **kw):
    """A result at exactly ``params`` (everything fixed, one iteration)."""
    m = type(model)(**{**model.__dict__, "fixed": ("startprob", "transmat", "emission")})
    return mj.em(m, x, init=params, tol=0, maxiter=1, stderr=False, **kw)


def test_result_methods_equal_enumeration_poisson():
    p = _poisson_params()
    seqs = [RNG.poisson(4.0, 6).astype(float), RNG.poisson(4.0, 4).astype(float)]
    res = _frozen_fit(mj.HMM(mj.dist.Poisson(), 3), seqs, p)
    probs = res.predict_proba(seqs)
    paths = res.decode(seqs)
    total = 0
    for s, g, path in zip(seqs, probs, paths):
        logb = stats.poisson.logpmf(s[:, None], p["rate"][None])
        ll, gb, best, _ = brute(p["startprob"], p["transmat"], logb)
        total += ll
        np.testing.assert_allclose(g, gb, atol=1e-12)
        np.testing.assert_array_equal(path, best)
    np.testing.assert_allclose(res.score(seqs), total, rtol=1e-12)
    np.testing.assert_allclose(res.loglik, total, rtol=1e-12)


def test_missing_observations_are_marginalised_or_refused():
    p = _poisson_params()
    s = RNG.poisson(4.0, 6).astype(float)
    s[2] = np.nan
    model = mj.HMM(mj.dist.Poisson(), 3)
    with pytest.raises(ValueError, match="missing='marginalize'"):
        mj.em(model, s)
    res = _frozen_fit(model, s, p, missing="marginalize")
    logb = stats.poisson.logpmf(np.nan_to_num(s)[:, None], p["rate"][None])
    logb[2] = 0.0
    ll, g, best, _ = brute(p["startprob"], p["transmat"], logb)
    np.testing.assert_allclose(res.score(s, missing="marginalize"), ll, rtol=1e-12)
    np.testing.assert_allclose(res.predict_proba(s, missing="marginalize"), g, atol=1e-12)


def test_parallel_scan_equals_sequential():
    pi, A = _random_hmm(4, 3)
    lengths = np.array([300, 17, 250])
    logb = RNG.normal(size=(3, 300, 4)) * 3
    mask = jnp.array(np.arange(300)[None] < lengths[:, None])
    args = (jnp.array(pi), jnp.array(A), jnp.array(logb), mask)
    a = jax.jit(_forward.forward_backward)(*args)
    b = jax.jit(_forward.forward_backward_parallel)(*args)
    np.testing.assert_allclose(b.loglik, a.loglik, rtol=1e-10)
    np.testing.assert_allclose(b.gamma, a.gamma, atol=1e-10)
    np.testing.assert_allclose(b.trans, a.trans, rtol=1e-10)
    x = [RNG.normal(size=40), RNG.normal(size=25) + 2]
    fits = [mj.em(mj.GaussianHMM(2, "diag", algorithm=alg), x, tol=0, maxiter=5, stderr=False)
            for alg in ("sequential", "parallel")]
    np.testing.assert_allclose(fits[1].loglik, fits[0].loglik, rtol=1e-10)


# -- hmmlearn on the same data and starting values ------------------------------------------------


def _gauss_series(k, d, lengths, seed):
    r = np.random.default_rng(seed)
    means = r.normal(scale=3, size=(k, d))
    A = 0.8 * np.eye(k) + 0.2 * r.dirichlet(np.ones(k), size=k)
    A /= A.sum(1, keepdims=True)
    out = []
    for t in lengths:
        s = [r.integers(k)]
        for _ in range(t - 1):
            s.append(r.choice(k, p=A[s[-1]]))
        out.append(means[s] + r.normal(size=(t, d)))
    return out


def _macro():
    df = sm.datasets.macrodata.load_pandas().data
    return [np.column_stack([df["infl"].to_numpy(), df["unemp"].to_numpy()])]


def _start_cov(x, k, ct, seed):
    d = x.shape[1]
    c = np.cov(x.T).reshape(d, d) + 0.1 * np.eye(d)
    r = np.random.default_rng(seed)
    scale = r.uniform(0.5, 1.5, k)
    return {"full": c[None] * scale[:, None, None], "tied": c, "diag": np.diag(c)[None] * scale[:, None],
            "spherical": np.full(k, np.mean(np.diag(c))) * scale}[ct]


def _hl_loglik(model, seqs, n):
    x = np.concatenate(seqs)
    lengths = [len(s) for s in seqs]
    model.n_iter, model.tol, model.init_params = n, -np.inf, ""
    model.monitor_ = ConvergenceMonitor(-np.inf, n, False)  # made at construction with the old n_iter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, lengths)
    return model.score(x, lengths)


@pytest.mark.parametrize("ct", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("data", ["simulated", "macrodata"])
def test_gaussian_equals_hmmlearn(ct, data):
    k = 3
    seqs = _gauss_series(k, 2, [60, 45, 80], 5) if data == "simulated" else _macro()
    x = np.concatenate(seqs)
    r = np.random.default_rng(0)
    init = {"startprob": r.dirichlet(np.ones(k)), "transmat": r.dirichlet(np.ones(k) * 3, size=k),
            "means": x[r.choice(len(x), k, replace=False)], "covariances": _start_cov(x, k, ct, 1)}
    for n in (1, 5, 50):
        m = hl.GaussianHMM(k, covariance_type=ct, covars_prior=0.0, implementation="log")
        m.startprob_, m.transmat_, m.means_, m.covars_ = (init["startprob"], init["transmat"], init["means"],
                                                          init["covariances"])
        ref = _hl_loglik(m, seqs, n)
        res = mj.em(mj.GaussianHMM(k, ct, reg_covar=0.0), seqs, init=init, tol=0, maxiter=n, stderr=False)
        assert int(res.n_iter) == n
        np.testing.assert_allclose(res.loglik, ref, rtol=1e-8)


def test_categorical_and_poisson_equal_hmmlearn():
    k = 3
    r = np.random.default_rng(3)
    states = [np.repeat(r.integers(k, size=10), 8) for _ in range(3)]
    cat = [np.where(r.random(len(s)) < 0.7, s, r.integers(4, size=len(s))).astype(float) for s in states]
    cnt = [r.poisson(np.array([1.0, 5.0, 12.0])[s]).astype(float) for s in states]
    pi, A = r.dirichlet(np.ones(k)), r.dirichlet(np.ones(k) * 2, size=k)
    ep = r.dirichlet(np.ones(4), size=k)
    lam = np.array([2.0, 4.0, 8.0])
    for n in (1, 5, 50):
        m = hl.CategoricalHMM(k, n_features=4, implementation="log")
        m.startprob_, m.transmat_, m.emissionprob_ = pi, A, ep
        ref = _hl_loglik(m, [c.astype(int)[:, None] for c in cat], n)
        res = mj.em(mj.HMM(mj.dist.Categorical(4), k), cat, init={"startprob": pi, "transmat": A, "p": ep[:, :-1]},
                    tol=0, maxiter=n, stderr=False)
        np.testing.assert_allclose(res.loglik, ref, rtol=1e-8)
        m = hl.PoissonHMM(k, implementation="log")
        m.startprob_, m.transmat_, m.lambdas_ = pi, A, lam[:, None]
        ref = _hl_loglik(m, [c.astype(int)[:, None] for c in cnt], n)
        res = mj.em(mj.HMM(mj.dist.Poisson(), k), cnt, init={"startprob": pi, "transmat": A, "rate": lam},
                    tol=0, maxiter=n, stderr=False)
        np.testing.assert_allclose(res.loglik, ref, rtol=1e-8)


# -- EM invariants ----------------------------------------------------------------------------------


def test_loglik_never_decreases_and_tol_zero_runs_maxiter():
    seqs = _gauss_series(3, 2, [50, 70], 9)
    model = mj.GaussianHMM(3, "full")
    lls = [float(mj.em(model, seqs, tol=0, maxiter=n, stderr=False).loglik) for n in range(1, 16)]
    assert np.all(np.diff(lls) >= -1e-9 * np.abs(lls[1:]))
    res = mj.em(model, seqs, tol=0, maxiter=15, stderr=False)
    assert int(res.n_iter) == 15 and not bool(res.loglik_decreased)


def test_list_equals_padded_with_lengths_and_restarts_keep_the_best():
    seqs = _gauss_series(2, 1, [30, 50, 20], 2)
    pad = np.zeros((3, 50, 1))
    for i, s in enumerate(seqs):
        pad[i, : len(s)] = s
    a = mj.em(mj.GaussianHMM(2, "diag"), seqs, stderr=False)
    b = mj.em(mj.GaussianHMM(2, "diag"), pad, lengths=[30, 50, 20], stderr=False)
    np.testing.assert_allclose(a.loglik, b.loglik, rtol=1e-12)
    np.testing.assert_allclose(a.score(seqs), sum(a.score(s) for s in seqs), rtol=1e-12)
    c = mj.em(mj.GaussianHMM(2, "diag"), seqs, n_init=4, init_method="random", key=jax.random.key(3), stderr=False)
    assert c.restart_logliks.shape == (4,)
    np.testing.assert_allclose(c.loglik, np.max(c.restart_logliks), rtol=1e-12)


def test_family_without_closed_form_uses_newton_and_increases():
    r = np.random.default_rng(4)
    x = np.r_[r.gamma(2.0, 1.0, 150), r.gamma(20.0, 1.0, 150)]
    lls = [float(mj.em(mj.HMM(mj.dist.Gamma(), 2), x, tol=0, maxiter=n, stderr=False).loglik) for n in (1, 3, 10)]
    assert lls[0] <= lls[1] <= lls[2]
    res = mj.em(mj.HMM(mj.dist.Gamma(), 2), x, tol=1e-8, maxiter=500)
    shape = np.sort(np.asarray(res.params["shape"]))
    assert 1.2 < shape[0] < 3.5 and 12 < shape[1] < 30


# -- standard errors ----------------------------------------------------------------------------


def _np_loglik(theta, seqs):
    """Independent numpy forward algorithm (log space), natural free parameters:
    startprob[0], transmat[:, 0], means, variances (2 states, 1-D Gaussian)."""
    pi = np.array([theta[0], 1 - theta[0]])
    A = np.column_stack([theta[1:3], 1 - theta[1:3]])
    mu, var = theta[3:5], theta[5:7]
    x = np.stack(seqs)  # equal lengths: all sequences at once, (n, T, K)
    lb = stats.norm.logpdf(x[:, :, None], mu, np.sqrt(var))
    a = np.log(pi) + lb[:, 0]
    for t in range(1, x.shape[1]):
        a = logsumexp(a[:, :, None] + np.log(A), axis=1) + lb[:, t]
    return float(np.sum(logsumexp(a, axis=1)))


def _fd_hessian(f, x, h):
    def hess(h):
        n = len(x)
        H = np.zeros((n, n))
        for i in range(n):
            for j in range(i, n):
                ei, ej = np.eye(n)[i] * h[i], np.eye(n)[j] * h[j]
                H[i, j] = H[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h[i] * h[j])
        return H

    return (4 * hess(h / 2) - hess(h)) / 3  # Richardson: O(h^4)


def test_stderr_equal_finite_differences_of_the_forward_loglik():
    r = np.random.default_rng(7)
    seqs = []
    for _ in range(8):
        s = [r.integers(2)]
        for _ in range(39):
            s.append(s[-1] if r.random() < 0.85 else 1 - s[-1])
        seqs.append(np.array([-1.0, 1.5])[s] + r.normal(size=40) * np.array([0.6, 1.0])[s])
    res = mj.em(mj.GaussianHMM(2, "diag", reg_covar=0.0), seqs, tol=1e-11, maxiter=5000)
    p = {k: np.asarray(v) for k, v in res.params.items()}
    theta = np.r_[p["startprob"][0], p["transmat"][:, 0], p["means"][:, 0], p["covariances"][:, 0]]
    H = _fd_hessian(lambda t: _np_loglik(t, seqs), theta, 1e-3 * np.maximum(np.abs(theta), 0.05))
    se_fd = np.sqrt(np.diag(np.linalg.inv(-H)))
    se = np.r_[res.stderr["startprob"][0], res.stderr["transmat"][:, 0], res.stderr["means"][:, 0],
               res.stderr["covariances"][:, 0]]
    np.testing.assert_allclose(se, se_fd, rtol=1e-5)
    # the dependent entries by the delta method: the same as their complements
    np.testing.assert_allclose(res.stderr["transmat"][:, 1], res.stderr["transmat"][:, 0], rtol=1e-8)


def test_boundary_probability_is_flagged_with_no_stderr():
    r = np.random.default_rng(8)
    x = np.r_[r.normal(-3, 1, 100), r.normal(3, 1, 100)]  # one switch: state 1 never returns
    res = mj.em(mj.GaussianHMM(2, "spherical"), x, tol=1e-10, maxiter=2000)
    tm = np.asarray(res.params["transmat"])
    lo = (tm < 1e-8) | (tm > 1 - 1e-8)
    assert np.any(tm < 1e-8)
    assert np.all(np.isnan(np.asarray(res.stderr["transmat"])[lo]))
    assert np.all(np.asarray(res.at_boundary["transmat"]) == lo)
    assert np.all(np.isfinite(np.asarray(res.stderr["means"])))
    assert "boundary" in res.message


def test_dirichlet_priors_map_em_equal_hmmlearn():
    k = 2
    r = np.random.default_rng(11)
    cnt = [r.poisson(np.where(np.arange(60) % 30 < 15, 2.0, 7.0)).astype(float) for _ in range(2)]
    pi, A, lam = np.array([0.6, 0.4]), np.array([[0.7, 0.3], [0.4, 0.6]]), np.array([1.5, 6.0])
    sp_prior, tm_prior = np.array([3.0, 2.0]), np.array([[4.0, 1.5], [2.0, 3.0]])
    for n in (1, 5, 50):
        m = hl.PoissonHMM(k, startprob_prior=sp_prior, transmat_prior=tm_prior, implementation="log")
        m.startprob_, m.transmat_, m.lambdas_ = pi, A, lam[:, None]
        ref = _hl_loglik(m, [c.astype(int)[:, None] for c in cnt], n)
        model = mj.HMM(mj.dist.Poisson(), k, startprob_prior=sp_prior, transmat_prior=tm_prior)
        res = mj.em(model, cnt, init={"startprob": pi, "transmat": A, "rate": lam}, tol=0, maxiter=n, stderr=False)
        np.testing.assert_allclose(res.loglik, ref, rtol=1e-8)


def test_hmm_pure_vmaps_over_datasets_like_a_loop_of_fits():
    from mlejax.hmm import hmm_pure

    model = mj.GaussianHMM(2, "diag")
    datasets = [np.stack(_gauss_series(2, 1, [40, 40], s)) for s in (20, 21, 22)]  # (2, 40, 1) each
    mask = jnp.ones((2, 40), bool)
    key = jax.random.key(0)

    def fit(x):
        return hmm_pure(model.static().with_hyper(model.hyper()), x, mask, mask, key, None,
                        jnp.asarray(1e-6), jnp.asarray(500, jnp.int32))

    out = jax.jit(jax.vmap(fit))(jnp.asarray(np.stack(datasets)))
    for i, x in enumerate(datasets):
        res = mj.em(model, list(x), tol=1e-6, maxiter=500, stderr=False)
        np.testing.assert_allclose(out.loglik[i], res.loglik, rtol=1e-8)  # batched GEMMs round differently


def test_sample_follows_the_fitted_chain():
    p = {"startprob": np.array([1.0, 0.0]), "transmat": np.array([[0.9, 0.1], [0.2, 0.8]]),
         "rate": np.array([1.0, 20.0])}
    res = _frozen_fit(mj.HMM(mj.dist.Poisson(), 2), np.array([0.0, 3.0, 25.0, 18.0]), p)
    x, s = res.sample(jax.random.key(0), 20000)
    s, x = np.asarray(s), np.asarray(x)
    assert s[0] == 0
    for i in range(2):
        np.testing.assert_allclose(np.mean(s[1:][s[:-1] == i] == i), p["transmat"][i, i], atol=0.02)
        np.testing.assert_allclose(np.mean(x[s == i]), p["rate"][i], rtol=0.03)
