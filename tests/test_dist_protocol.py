"""One distribution protocol: an mj.dist family is what fit_dist fits, what
mj.Mixture mixes and what an mj.glm response is; a user-written family (a Gumbel,
written here) plugs into all of them from one definition.

Oracles: the log-likelihoods main (commit 206fba1, before the families were
merged) reached from the same data and starting values; scipy.stats densities
and fits; scipy.optimize on a mixture's marginal likelihood; simulation truth."""

import dataclasses
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize, stats
from scipy.special import logsumexp

import mlejax as mj
from mlejax import dist as D
from mlejax.models._glm import LINKS, MODELS, glm_loglik

# -- 1. the mixture families equal the mixtures of before -------------------------------


def _mix_data(kind):
    rng = np.random.default_rng(11)
    n = 900
    z = rng.integers(0, 3, n)
    if kind == "normal":
        return np.array([-3.0, 0.5, 4.0])[z] + np.array([0.8, 1.0, 1.5])[z] * rng.standard_normal(n)
    if kind == "poisson":
        return rng.poisson(np.array([1.0, 6.0, 15.0])[z]).astype(float)
    if kind == "gamma":
        return rng.gamma(np.array([2.0, 9.0, 9.0])[z % 2], 1 / np.array([2.0, 1.0, 1.0])[z % 2])
    return np.array([1.0, 6.0, 6.0])[z % 2] * rng.weibull(np.array([1.5, 4.0, 4.0])[z % 2])


INIT = {
    "normal": {"weights": [0.3, 0.3, 0.4], "mu": [-2.0, 0.0, 3.0], "sigma": [1.0, 1.0, 1.0]},
    "poisson": {"weights": [0.3, 0.3, 0.4], "rate": [0.5, 5.0, 12.0]},
    "gamma": {"weights": [0.5, 0.5], "shape": [1.0, 5.0], "rate": [1.0, 0.5]},
    "weibull": {"weights": [0.5, 0.5], "shape": [1.0, 2.0], "scale": [0.5, 4.0]},
}
FAMILY = {"normal": D.Normal(), "poisson": D.Poisson(), "gamma": D.Gamma(), "weibull": D.Weibull()}

# mj.em(model, data, init=INIT, tol, maxiter).loglik on main at 206fba1 (before this
# change), with mj.mixture.Normal() (loc/scale), mj.PoissonMixture(3), a user-written
# gamma logpdf with Positive markers, and mj.mixture.Weibull(): /tmp script
# recorded in benchmarks/README.md ("One distribution protocol").
MAIN = {
    ("normal", 1e-10, 1000): (-2173.189405176322, 228),
    ("normal", 0.0, 7): (-2174.57745793292, 7),
    ("poisson", 1e-10, 1000): (-2665.664649929845, 43),
    ("poisson", 0.0, 7): (-2666.8849586293873, 7),
    ("gamma", 1e-10, 1000): (-1838.9345404865708, 19),
    ("gamma", 0.0, 7): (-1838.9350145699048, 7),
    ("weibull", 1e-10, 1000): (-1522.3473948563278, 47),
    ("weibull", 0.0, 7): (-1535.4929101523685, 7),
}


@pytest.mark.parametrize("kind", ["normal", "poisson", "gamma", "weibull"])
def test_mixture_of_dist_family_equals_the_mixture_of_before(kind):
    x = _mix_data(kind)
    model = mj.Mixture(FAMILY[kind], len(INIT[kind]["weights"]))
    for (k, tol, maxiter), (ll_main, n_main) in MAIN.items():
        if k != kind:
            continue
        r = mj.em(model, x, init=INIT[kind], tol=tol, maxiter=maxiter, stderr=False)
        assert int(r.n_iter) == n_main
        assert float(r.loglik) == pytest.approx(ll_main, rel=1e-10, abs=0)


def test_old_mixture_names_are_the_dist_families_with_their_old_parameter_names():
    x = _mix_data("normal")
    init = {"weights": INIT["normal"]["weights"], "loc": INIT["normal"]["mu"], "scale": INIT["normal"]["sigma"]}
    r = mj.em(mj.Mixture(mj.mixture.Normal(), 3), x, init=init, tol=1e-10, maxiter=1000, stderr=False)
    assert float(r.loglik) == pytest.approx(MAIN[("normal", 1e-10, 1000)][0], rel=1e-10, abs=0)
    assert sorted(r.params) == ["loc", "scale", "weights"]
    assert isinstance(mj.mixture.Normal(), D.Family) and mj.mixture.Weibull is D.Weibull
    assert mj.mixture.Poisson is D.Poisson and mj.mixture.StudentT is D.StudentT
    assert mj.mixture.Bernoulli().constraints == {"probs": "unit"}


# -- 2. every family in mj.dist is a mixture component -----------------------------------

TRUTH = {
    "Bernoulli": ({"p": [0.9, 0.8, 0.2, 0.1]}, {"p": [0.1, 0.3, 0.7, 0.9]}),
    "Binomial": ({"p": 0.2}, {"p": 0.7}),
    "Categorical": ({"p": [0.7, 0.2]}, {"p": [0.1, 0.2]}),
    "Multinomial": ({"p": [0.7, 0.2]}, {"p": [0.1, 0.2]}),
    "Normal": ({"mu": -2.0, "sigma": 1.0}, {"mu": 2.0, "sigma": 0.5}),
    "Poisson": ({"rate": 2.0}, {"rate": 10.0}),
    "Exponential": ({"rate": 2.0}, {"rate": 0.2}),
    "Gamma": ({"shape": 2.0, "rate": 2.0}, {"shape": 9.0, "rate": 1.0}),
    "Beta": ({"a": 2.0, "b": 8.0}, {"a": 8.0, "b": 2.0}),
    "Weibull": ({"shape": 1.5, "scale": 1.0}, {"shape": 4.0, "scale": 6.0}),
    "LogNormal": ({"mu": 0.0, "sigma": 0.5}, {"mu": 2.0, "sigma": 0.3}),
    "StudentT": ({"df": 5.0, "loc": -4.0, "scale": 1.0}, {"df": 5.0, "loc": 4.0, "scale": 1.0}),
    "NegativeBinomial": ({"mean": 2.0, "alpha": 0.5}, {"mean": 20.0, "alpha": 0.1}),
    "Geometric": ({"p": 0.6}, {"p": 0.1}),
    "Laplace": ({"loc": -3.0, "scale": 1.0}, {"loc": 3.0, "scale": 0.5}),
    "MultivariateNormal": ({"mean": [-2.0, 0.0], "cov": [1.0, 0.3, 1.0]}, {"mean": [2.0, 1.0], "cov": [0.5, 0.0, 0.5]}),
}
MAKE = {"Binomial": lambda: D.Binomial(n=10), "Categorical": lambda: D.Categorical(k=3),
        "Multinomial": lambda: D.Multinomial(k=3, n=5)}


def _family(name):
    return MAKE.get(name, getattr(D, name))()


def test_every_family_is_covered():
    assert {f.__name__ for f in D.FAMILIES} == set(TRUTH)


@pytest.mark.parametrize("name", sorted(TRUTH))
def test_every_dist_family_is_a_mixture_component(name):
    """mj.Mixture(family, 2) on data drawn by family.sample: EM's log-likelihood is at
    least the log-likelihood at the true parameters (the MLE beats the truth)."""
    fam = _family(name)
    p1, p2 = ({k: jnp.asarray(v) for k, v in p.items()} for p in TRUTH[name])
    k1, k2 = jax.random.split(jax.random.key(3))
    sample = jax.jit(fam.sample, static_argnums=2)  # one compiled sampler for both halves
    x = np.concatenate([np.asarray(sample(k1, p1, 500)), np.asarray(sample(k2, p2, 500))])
    xp = fam.prepare(jnp.asarray(x))
    logpdf = jax.jit(fam.logpdf)
    per_obs = lambda p: np.asarray(logpdf(p, xp)).reshape(len(x), -1).sum(1)  # noqa: E731
    ll_truth = logsumexp(np.stack([np.log(0.5) + per_obs(p1), np.log(0.5) + per_obs(p2)], 1), axis=1).sum()
    r = mj.em(mj.Mixture(fam, 2), x, tol=1e-9, maxiter=3000, stderr=False)
    assert np.isfinite(float(r.loglik))
    assert float(r.loglik) >= ll_truth - 1e-8 * abs(ll_truth), (float(r.loglik), ll_truth)
    assert sorted(r.params) == sorted([*TRUTH[name][0], "weights"])


@pytest.mark.parametrize(
    "name, scipy_dist",
    [
        ("Normal", lambda p: stats.norm(p["mu"], p["sigma"])),
        ("Gamma", lambda p: stats.gamma(p["shape"], scale=1 / p["rate"])),
        ("Weibull", lambda p: stats.weibull_min(p["shape"], scale=p["scale"])),
        ("StudentT", lambda p: stats.t(p["df"], p["loc"], p["scale"])),
        ("NegativeBinomial", lambda p: stats.nbinom(1 / p["alpha"], 1 / (1 + p["alpha"] * p["mean"]))),
        ("Beta", lambda p: stats.beta(p["a"], p["b"])),
        ("Geometric", lambda p: stats.geom(p["p"])),
        ("Binomial", lambda p: stats.binom(10, p["p"])),
        ("LogNormal", lambda p: stats.lognorm(p["sigma"], scale=np.exp(p["mu"]))),
        ("Laplace", lambda p: stats.laplace(p["loc"], p["scale"])),
    ],
)
def test_samplers_match_scipy_moments(name, scipy_dist):
    p = {k: float(v) for k, v in TRUTH[name][1].items()}
    n = 40_000
    draws = np.asarray(_family(name).sample(jax.random.key(5), {k: jnp.asarray(v) for k, v in p.items()}, n))
    ref = scipy_dist(p)
    mean, var = ref.stats("mv")
    assert abs(draws.mean() - mean) < 5 * np.sqrt(var / n)
    if name in ("NegativeBinomial", "Geometric", "Binomial"):  # discrete: the variance
        assert abs(draws.var() / var - 1) < 0.05
    else:
        assert stats.kstest(draws, ref.cdf).pvalue > 1e-4


# -- 3. GLM responses are dist families ------------------------------------------------


SCIPY_RESPONSE = {
    "linear": lambda y, mu, nu: stats.norm.logpdf(y, mu, nu),
    "logit": lambda y, mu, nu: stats.bernoulli.logpmf(y, mu),
    "probit": lambda y, mu, nu: stats.bernoulli.logpmf(y, mu),
    "binomial": lambda y, mu, nu: stats.bernoulli.logpmf(y, mu),  # one trial per row
    "poisson": lambda y, mu, nu: stats.poisson.logpmf(y, mu),
    "negbin": lambda y, mu, nu: stats.nbinom.logpmf(y, 1 / nu, 1 / (1 + nu * mu)),
    "gamma": lambda y, mu, nu: stats.gamma.logpdf(y, nu, scale=mu / nu),
}


@pytest.mark.parametrize("model", sorted(MODELS))
def test_glm_responses_are_dist_families_with_scipy_densities(model):
    family, link = MODELS[model]
    assert isinstance(family, D.Family) and type(family).__name__ in {f.__name__ for f in D.FAMILIES}
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(50), rng.normal(size=50)])
    beta = np.array([0.3, 0.4]) if link != "inverse" else np.array([0.5, 0.05])
    eta = X @ beta
    mu = np.asarray(LINKS[link].inverse(jnp.asarray(eta)))
    draw = {"linear": lambda: rng.normal(mu), "logit": lambda: rng.random(50) < mu, "probit": lambda: rng.random(50) < mu,
            "binomial": lambda: rng.random(50) < mu,
            "poisson": lambda: rng.poisson(mu), "negbin": lambda: rng.poisson(mu), "gamma": lambda: rng.gamma(2.0, mu / 2)}
    y = np.asarray(draw[model](), float)
    nu = 1.3
    params = {"beta": jnp.asarray(beta)}
    if family.nuisance:
        params[family.nuisance] = jnp.asarray(nu)
    data = tuple(jnp.asarray(a) for a in (y, X, np.zeros(50), np.ones(50)))
    got = float(glm_loglik(family, LINKS[link])(params, data))
    assert got == pytest.approx(SCIPY_RESPONSE[model](y, mu, nu).sum(), rel=1e-10)


# -- 4. a user-written family from one definition ---------------------------------------


def gumbel_logpdf(p, x):
    z = (x - p["loc"]) / p["scale"]
    return -jnp.log(p["scale"]) - z - jnp.exp(-z)


def gumbel_start(x, w):  # moments: sd = pi scale / sqrt(6), mean = loc + euler scale
    m = jnp.sum(w * x) / jnp.sum(w)
    s = jnp.sqrt(jnp.sum(w * (x - m) ** 2) / jnp.sum(w)) * np.sqrt(6) / np.pi
    return {"loc": m - 0.5772156649015329 * s, "scale": s}


GUMBEL = D.Custom(gumbel_logpdf, {"loc": 0.0, "scale": mj.Positive(1.0)}, start=gumbel_start)


@dataclasses.dataclass(frozen=True)
class Gumbel(D.Family):
    """The same family as a subclass of mj.dist.Family."""

    constraints = {"scale": "positive"}

    def logpdf(self, p, x):
        return gumbel_logpdf(p, x)

    def start(self, x, w):
        return gumbel_start(x, w)


@pytest.mark.parametrize("family", [GUMBEL, Gumbel()], ids=["Custom", "subclass"])
def test_user_gumbel_in_fit_dist_and_mj_fit_equals_scipy(family):
    x = stats.gumbel_r.rvs(2.0, 1.5, size=500, random_state=np.random.default_rng(7))
    loc, scale = stats.gumbel_r.fit(x)
    ll_sp = stats.gumbel_r.logpdf(x, loc, scale).sum()
    res = mj.fit_dist(family, x)
    np.testing.assert_allclose([res.params["loc"], res.params["scale"]], [loc, scale], rtol=1e-6)
    assert float(res.loglik) == pytest.approx(ll_sp, rel=1e-10)
    # expected information of the Gumbel (loc, scale): (1/b^2) [[1, (g - 1)], [(g - 1), ((1 - g)^2 + pi^2/6)]]
    g = 1 - 0.5772156649015329
    info = len(x) / scale**2 * np.array([[1.0, -g], [-g, g**2 + np.pi**2 / 6]])
    np.testing.assert_allclose([res.stderr["loc"], res.stderr["scale"]], np.sqrt(np.diag(np.linalg.inv(info))), rtol=0.1)
    start = family.init(family.start(jnp.asarray(x), jnp.ones(len(x))))
    fit = mj.fit(family.loglik, start, jnp.asarray(x))  # the same definition as an mj.fit log-likelihood
    np.testing.assert_allclose([fit.params["loc"], fit.params["scale"]], [loc, scale], rtol=1e-6)


def test_user_gumbel_as_mixture_component_equals_scipy_on_the_marginal_likelihood():
    rng = np.random.default_rng(8)
    x = np.concatenate([stats.gumbel_r.rvs(-2.0, 0.7, size=500, random_state=rng),
                        stats.gumbel_r.rvs(4.0, 1.2, size=700, random_state=rng)])

    def negll(t):
        if not (0 < t[0] < 1 and t[2] > 0 and t[4] > 0):
            return np.inf
        lp = np.stack([np.log(t[0]) + stats.gumbel_r.logpdf(x, t[1], t[2]),
                       np.log1p(-t[0]) + stats.gumbel_r.logpdf(x, t[3], t[4])], 1)
        return -logsumexp(lp, axis=1).sum()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy probing outside the support
        sp = optimize.minimize(negll, [0.5, -1.0, 1.0, 3.0, 1.0], method="Nelder-Mead",
                               options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 40000, "maxfev": 40000})
    for family in (GUMBEL, Gumbel()):
        r = mj.em(mj.Mixture(family, 2), x, tol=1e-12, maxiter=5000)
        assert float(r.loglik) == pytest.approx(-sp.fun, rel=1e-9)
        order = np.argsort(np.asarray(r.params["loc"]))
        est = [r.params["weights"][order[0]], *np.ravel(np.column_stack(
            [np.asarray(r.params["loc"])[order], np.asarray(r.params["scale"])[order]]))]
        np.testing.assert_allclose(est, sp.x, rtol=1e-4)
        assert np.all(np.isfinite(np.asarray(r.stderr["scale"])))
