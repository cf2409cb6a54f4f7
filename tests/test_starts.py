"""Multi-start fits (``starts=``): oracles are brute-force grid searches over the
parameter space, scikit-learn's GaussianMixture, and hand enumeration."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGMM

import mlejax as mj
from mlejax._starts import LOGLIK_RTOL, summarise

# -- a Cauchy location likelihood: one local maximum per well-separated cluster --------------

CAUCHY_X = np.array([-6.1, -5.9, -0.3, 0.1, 0.2, 0.4, 9.8, 10.1, 10.3])
TRACES = {"cauchy": 0}


def cauchy_ll(p, x):
    TRACES["cauchy"] += 1  # counts traces (Python calls), not evaluations of the compiled fit
    return jnp.sum(jax.scipy.stats.cauchy.logpdf(x, p["m"], 0.5))


def grid_maxima(x, lo=-15.0, hi=20.0, n=350001):
    """The local maxima of the Cauchy log-likelihood on a fine grid (brute force)."""
    g = np.linspace(lo, hi, n)
    z = (x[None, :] - g[:, None]) / 0.5
    ll = np.sum(-np.log(np.pi * 0.5) - np.log1p(z**2), axis=1)
    peaks = np.flatnonzero((ll[1:-1] > ll[:-2]) & (ll[1:-1] > ll[2:])) + 1
    return g[peaks], ll[peaks], g[1] - g[0]


def test_cauchy_single_start_lower_maximum_and_starts_find_the_global_one():
    where, lls, step = grid_maxima(CAUCHY_X)
    assert len(where) == 3  # the data have three local maxima
    g = np.argmax(lls)
    single = mj.fit(cauchy_ll, {"m": 10.0}, CAUCHY_X)
    assert single.converged and single.starts is None
    near = np.argmin(np.abs(where - float(single.params["m"])))
    assert abs(float(single.params["m"]) - where[near]) < step and near != g  # a lower local maximum
    assert float(single.loglik) < lls[g] - 5.0

    res = mj.fit(cauchy_ll, {"m": 10.0}, CAUCHY_X, starts=16, key=jax.random.key(0))
    assert res.converged and isinstance(res, mj.FitResult)
    assert abs(float(res.params["m"]) - where[g]) < step
    assert float(res.loglik) >= lls[g] - 1e-9  # at least the grid's best value
    s = res.starts
    assert (s.n_starts, s.n_converged) == (16, 16) and sum(s.counts) == 16
    assert s.n_maxima == 3 and s.logliks[0] == pytest.approx(float(res.loglik), abs=1e-12)
    for m in s.maxima:  # every maximum reported is a maximum of the grid
        j = np.argmin(np.abs(where - m.params[0]))
        assert abs(m.params[0] - where[j]) < step and m.loglik == pytest.approx(lls[j], abs=1e-6)
    assert list(s.logliks) == sorted(s.logliks, reverse=True)
    assert not s.flagged and "3 distinct maxima" in str(s)
    assert "Starts: 16 starts, 16 converged, 3 distinct maxima" in res.summary()
    # full inference at the best start: the observed information is the grid's curvature there
    h = 1e-4
    m0 = float(res.params["m"])
    f = lambda m: float(cauchy_ll({"m": m}, CAUCHY_X))  # noqa: E731
    curv = -(f(m0 + h) - 2 * f(m0) + f(m0 - h)) / h**2
    assert float(res.stderr["m"]) == pytest.approx(curv**-0.5, rel=1e-5)


def test_second_multistart_fit_with_the_same_shapes_does_not_recompile():
    mj.fit(cauchy_ll, {"m": 10.0}, CAUCHY_X, starts=16, key=jax.random.key(0))
    before = TRACES["cauchy"]
    res = mj.fit(cauchy_ll, {"m": -3.0}, CAUCHY_X + 0.05, starts=16, key=jax.random.key(7))
    assert TRACES["cauchy"] == before
    assert res.converged and res.starts.n_starts == 16


def test_best_maximum_reached_by_a_single_start_is_flagged_and_warned():
    where, lls, step = grid_maxima(CAUCHY_X)
    stack = {"m": np.r_[np.linspace(9.8, 10.4, 15), 0.5]}  # only the last start is near the global maximum
    with pytest.warns(mj.LocalOptimaWarning, match="only 1 of 16 starts"):
        res = mj.fit(cauchy_ll, {"m": 10.0}, CAUCHY_X, starts=stack)
    assert res.starts.single_start_best and not res.starts.near_tie
    assert res.starts.best == 15 and res.starts.counts == (1, 15)
    assert abs(float(res.params["m"]) - where[np.argmax(lls)]) < step
    assert "only 1 of 16 starts" in res.message


# -- label switching: a two-component mixture written by hand as one log-likelihood ---------

MIX_X = np.r_[np.linspace(-3.0, -1.0, 12), np.linspace(1.5, 3.5, 8)]


def mixture_ll(p, x):
    comp = jax.scipy.stats.norm.logpdf(x[:, None], p["mu"][None, :], 1.0)
    return jnp.sum(jax.nn.logsumexp(comp + jnp.log(0.5), axis=1))


def test_label_switching_two_equal_maxima_flagged():
    stack = {"mu": np.array([[-1.0, 1.0], [-3.0, 3.0], [1.0, -1.0], [3.0, -3.0]])}
    with pytest.warns(mj.LocalOptimaWarning, match="2 distinct maxima have the same log-likelihood"):
        res = mj.fit(mixture_ll, {"mu": np.zeros(2)}, MIX_X, starts=stack)
    s = res.starts
    assert s.near_tie and not s.single_start_best
    assert (s.n_converged, s.n_maxima, s.counts) == (4, 2, (2, 2))
    assert abs(s.logliks[0] - s.logliks[1]) <= LOGLIK_RTOL * abs(s.logliks[0])
    a, b = np.array(s.maxima[0].params), np.array(s.maxima[1].params)
    np.testing.assert_allclose(a, b[::-1], atol=1e-6)  # the same fit, labels swapped
    # brute force over a grid of (mu1, mu2): the best grid value is the maximum found
    g = np.linspace(-4.0, 4.0, 801)
    m1, m2 = np.meshgrid(g, g, indexing="ij")
    dens = 0.5 * (np.exp(-0.5 * (MIX_X - m1[..., None]) ** 2) + np.exp(-0.5 * (MIX_X - m2[..., None]) ** 2))
    ll = np.sum(np.log(dens / np.sqrt(2 * np.pi)), axis=-1)
    i, j = np.unravel_index(np.argmax(ll), ll.shape)
    assert float(res.loglik) >= ll.max() - 1e-9
    assert np.allclose(sorted(a), sorted([g[i], g[j]]), atol=0.01)
    assert "label switching" in res.message


# -- curve_fit: a frequency with many local optima and a known global one -------------------

SINE_X = np.linspace(0.0, 10.0, 40)
SINE_Y = np.sin(2.0 * SINE_X) + 0.1 * np.cos(7.3 * SINE_X)


def sine(t, x):
    return t["a"] * jnp.sin(t["w"] * x)


def test_curve_fit_starts_find_the_global_frequency():
    # brute force over w, the amplitude profiled out in closed form (linear least squares)
    w = np.linspace(0.05, 5.0, 99001)
    s = np.sin(np.outer(w, SINE_X))
    a = s @ SINE_Y / np.sum(s * s, axis=1)
    rss = np.sum((SINE_Y - a[:, None] * s) ** 2, axis=1)
    best = np.argmin(rss)
    init = {"a": 0.5, "w": 0.5}
    single = mj.curve_fit(sine, SINE_X, SINE_Y, init)  # converges, to a lower maximum
    assert float(single.extras["rss"]) > rss[best] + 1.0
    with pytest.warns(mj.LocalOptimaWarning, match="only 1 of 17 starts"):  # a narrow basin
        res = mj.curve_fit(sine, SINE_X, SINE_Y, init, starts=16, key=jax.random.key(0))
    assert res.converged and isinstance(res, mj.ModelResult)
    assert abs(float(res.params["w"]) - w[best]) < 2 * (w[1] - w[0])
    assert float(res.extras["rss"]) <= rss[best] + 1e-12
    assert res.starts.n_starts == 17  # the Levenberg-Marquardt point is one more start
    assert res.starts.logliks[0] == pytest.approx(float(res.loglik), abs=1e-9)
    assert res.starts.n_maxima >= 2 and res.starts.single_start_best
    # a sin(w x) = (-a) sin(-w x): from other starts both signs are found, a tie (not identified)
    with pytest.warns(mj.LocalOptimaWarning, match="2 distinct maxima have the same log-likelihood"):
        res = mj.curve_fit(sine, SINE_X, SINE_Y, init, starts=16, key=jax.random.key(1))
    m0, m1 = res.starts.maxima[:2]
    assert res.starts.near_tie and m0.loglik == pytest.approx(m1.loglik, abs=1e-9)
    np.testing.assert_allclose(m0.params, -np.array(m1.params), rtol=1e-6)
    assert abs(abs(float(res.params["w"])) - w[best]) < 2 * (w[1] - w[0])


# -- EM's n_init reports the same summary -----------------------------------------------------


def test_em_n_init_reports_the_restarts():
    rng = np.random.default_rng(3)
    x = np.r_[rng.normal(-4.0, 1.0, 150), rng.normal(3.0, 0.7, 100)][:, None]
    res = mj.em(mj.GaussianMixture(2), x, n_init=5, init_method="random", tol=1e-8, key=jax.random.key(1),
                stderr=False)
    sk = SkGMM(2, tol=1e-10, max_iter=1000, random_state=0).fit(x)
    s = res.starts
    assert (s.n_starts, s.n_converged) == (5, 5)
    # one maximum up to the labels of the components, the one scikit-learn finds
    assert (s.n_maxima, s.counts) == (1, (5,)) and not s.flagged
    assert s.logliks[0] == pytest.approx(sk.score(x) * x.shape[0], abs=1e-4)
    assert mj.em(mj.GaussianMixture(2), x, stderr=False).starts is None  # one start: no summary


def test_summarise_by_hand():
    ll = np.array([-10.0, -12.0, -10.0 + 1e-12, -10.0, np.nan, -9.0])
    ok = np.array([True, True, True, True, True, False])
    phi = np.array([[1.0, 2.0], [0.0, 0.0], [1.0 + 1e-9, 2.0], [2.0, 1.0], [0.0, 0.0], [5.0, 5.0]])
    se = np.full_like(phi, 0.1)
    s = summarise(ll, ok, phi, se, ("a", "b"))
    # starts 0 and 2 are one maximum; 3 is its mirror image (a tie); 1 is lower; 4 NaN, 5 failed
    assert (s.n_starts, s.n_converged, s.n_maxima) == (6, 4, 3)
    assert s.counts == (2, 1, 1) and s.logliks == (-10.0, -10.0, -12.0)
    assert [m.start for m in s.maxima] == [0, 3, 1] and s.best == 0  # ties: the earliest start first
    assert s.near_tie and not s.single_start_best and s.names == ("a", "b")
    # start 5 did not converge but ended higher (-9 > -10): flagged, the fit is still start 0
    assert s.higher_unconverged and s.best_unconverged == -9.0 and "-9" in " ".join(s.notes())
    lower = summarise(np.where(ok, ll, -11.0), ok, phi, se)  # a failed start below the best: no flag
    assert not lower.higher_unconverged and lower.best == 0
    none = summarise(ll[:2], np.zeros(2, bool), phi[:2])
    assert (none.n_converged, none.n_maxima, none.best, none.flagged) == (0, 0, -1, False)


# -- bad starts= -------------------------------------------------------------------------------


def _ll(p, x):
    return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], p["sigma"]))


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(starts=0, key=jax.random.key(0)), ValueError, "starts=0 must be at least 1"),
        (dict(starts=-3, key=jax.random.key(0)), ValueError, "starts=-3 must be at least 1"),
        (dict(starts=True), TypeError, "not a number of starts"),
        (dict(starts=2.5), TypeError, "not a number of starts"),
        (dict(starts=8), ValueError, r"starts=8 needs key=, e.g. key=jax.random.key\(0\)"),
        (dict(starts=8, key=3), TypeError, r"key=3 is a number; .*jax.random.key\(3\)"),
        (dict(starts=lambda k: {"mu": 0.0, "sigma": 1.0}, key=jax.random.key(0)), ValueError,
         r"pass a stack of keys, e.g. key=jax.random.split"),
        (dict(starts={"mu": np.zeros(4)}), ValueError, "does not have the structure of init"),
        (dict(starts={"mu": np.zeros((4, 2)), "sigma": np.ones(4)}), ValueError,
         r"starts leaf 'mu' has shape \(4, 2\); a stack of starts needs shape \(n_starts,\)"),
        (dict(starts={"mu": np.zeros(4), "sigma": np.ones(3)}), ValueError, "disagree on the number of starts"),
        (dict(starts={"mu": np.zeros(0), "sigma": np.ones(0)}), ValueError, "holds no starts"),
        (dict(starts={"mu": np.zeros(2), "sigma": np.array([1.0, -1.0])}), ValueError,
         "not strictly above mj.Positive"),
        (dict(key=jax.random.key(0)), ValueError, "key= is only used with starts="),
    ],
)
def test_bad_starts_are_refused_with_the_fix(kwargs, err, match):
    with pytest.raises(err, match=match):
        mj.fit(_ll, {"mu": 0.0, "sigma": mj.Positive(1.0)}, np.array([0.1, 0.5, -0.3]), **kwargs)


def test_starts_refused_under_jit():
    f = jax.jit(lambda x: mj.fit(_ll, {"mu": 0.0, "sigma": mj.Positive(1.0)}, x, starts=4,
                                 key=jax.random.key(0)).loglik)
    with pytest.raises(ValueError, match="starts= runs outside jax.jit"):
        f(np.array([0.1, 0.5, -0.3]))


# -- starts= on a generic mixture (mj.em on mj.Mixture) ----------------------------------------

POIS_X = np.r_[np.repeat(np.arange(5), [8, 14, 12, 6, 2]), np.repeat(np.arange(8, 14), [3, 6, 9, 8, 5, 2])].astype(float)


def test_em_starts_on_a_generic_mixture_find_the_symmetric_fixed_point_and_the_maximum():
    model = mj.Mixture(mj.dist.Poisson(), 2)
    rates = np.array([[1.0, 10.0], [10.0, 1.0], [3.0, 3.0], [7.0, 7.0]])
    stack = {"weights": np.full((4, 2), 0.5), "rate": rates}
    res = mj.em(model, POIS_X, starts=stack, tol=1e-10, stderr=False)
    s = res.starts
    assert (s.n_starts, s.n_converged, s.n_maxima, s.counts) == (4, 4, 2, (2, 2)) and not s.flagged
    # equal rates stay equal: EM's fixed point there is the one-component MLE, rate = mean(x)
    lam = POIS_X.mean()
    one = np.sum(POIS_X * np.log(lam) - lam - np.array([np.sum(np.log(np.arange(1, k + 1))) for k in POIS_X]))
    assert s.logliks[1] == pytest.approx(one, abs=1e-6)
    # the best maximum is what EM from the first start alone reaches (labels swapped or not)
    single = mj.em(model, POIS_X, init={"weights": np.full(2, 0.5), "rate": rates[0]}, tol=1e-10, stderr=False)
    assert s.logliks[0] == pytest.approx(float(single.loglik), abs=1e-6)
    np.testing.assert_allclose(np.sort(np.asarray(res.params["rate"])), np.sort(np.asarray(single.params["rate"])),
                               rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(starts=2, n_init=3), ValueError, "give either starts= or init=/n_init="),
        (dict(starts=0), ValueError, "starts=0 must be an integer >= 1"),
        (dict(starts={"weights": np.full((2, 2), 0.5), "rate": np.ones((3, 2))}), ValueError,
         "stacked along a leading axis of the same length"),
        (dict(starts={"weights": np.full((2, 2), 0.5), "rate": -np.ones((2, 2))}), ValueError,
         "not strictly above its lower bound"),
        (dict(starts=lambda k: {"weights": jnp.full(2, 0.5), "rate": jnp.ones(2)}), ValueError,
         "pass a stack of keys"),
    ],
)
def test_bad_em_starts_are_refused(kwargs, err, match):
    with pytest.raises(err, match=match):
        mj.em(mj.Mixture(mj.dist.Poisson(), 2), POIS_X, **kwargs)
