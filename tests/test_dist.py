"""Distribution families and fit_dist, against scipy.stats, closed forms and
textbook (inverse expected information) standard errors."""

import logging
import math
import warnings

import jax
import jax.numpy as jnp
import jax.scipy.stats as st_jax
import numpy as np
import pytest
import scipy.integrate as si
import scipy.optimize as so
import scipy.special as sp
import scipy.stats as st

import mlejax as mj
from mlejax import dist as D

RTOL = 1e-7
rng = np.random.default_rng(20261126)
N = 400
SAMPLES = {
    "Normal": rng.normal(2.0, 3.0, N),
    "LogNormal": rng.lognormal(1.0, 0.5, N),
    "Poisson": rng.poisson(3.2, N),
    "Exponential": rng.exponential(2.0, N),
    "Bernoulli": rng.binomial(1, 0.3, N),
    "Binomial": rng.binomial(10, 0.3, N),
    "Geometric": rng.geometric(0.3, N),
    "Laplace": rng.laplace(1.0, 2.0, N),
    "Gamma": rng.gamma(2.5, 2.0, N),
    "Beta": rng.beta(2.0, 3.0, N),
    "Weibull": 3.0 * rng.weibull(1.7, N),
    "StudentT": 1.0 + 2.0 * rng.standard_t(4.0, N),
    "NegativeBinomial": rng.negative_binomial(2.0, 0.3, N),
    "Categorical": rng.choice(3, N, p=[0.2, 0.3, 0.5]),
    "Multinomial": rng.multinomial(5, [0.2, 0.3, 0.5], N),
    "MultivariateNormal": rng.multivariate_normal([0.0, 1.0], [[1.0, 0.5], [0.5, 2.0]], N),
}
FAMILIES = {
    "Normal": D.Normal(), "LogNormal": D.LogNormal(), "Poisson": D.Poisson(),
    "Exponential": D.Exponential(), "Bernoulli": D.Bernoulli(), "Binomial": D.Binomial(n=10),
    "Geometric": D.Geometric(), "Laplace": D.Laplace(), "Gamma": D.Gamma(), "Beta": D.Beta(),
    "Weibull": D.Weibull(), "StudentT": D.StudentT(), "NegativeBinomial": D.NegativeBinomial(),
    "Categorical": D.Categorical(k=3), "Multinomial": D.Multinomial(k=3, n=5),
    "MultivariateNormal": D.MultivariateNormal(d=2),
}


def _weibull_oracle(x):
    """Weibull MLE by root-finding on the profile equation for the shape."""
    lx = np.log(x)

    def eq(k):
        xk = x**k
        return 1 / k + lx.mean() - np.sum(xk * lx) / np.sum(xk)

    k = so.brentq(eq, 0.05, 50, xtol=1e-15, rtol=1e-15)
    return {"shape": k, "scale": np.mean(x**k) ** (1 / k)}


def _polish(loglik, x0):
    """Polish a scipy fit (scipy's own tolerance is ~1e-5) by solving the score equations
    of scipy's log-likelihood, differentiated by central differences."""

    def score(t):
        g = []
        for i in range(len(t)):
            h = 1e-6 * max(abs(t[i]), 1e-3)
            up, dn = np.array(t, float), np.array(t, float)
            up[i] += h
            dn[i] -= h
            g.append((loglik(up) - loglik(dn)) / (2 * h))
        return g

    r = so.root(score, x0, method="hybr", tol=1e-14)
    return r.x


def oracle_params(name, x):
    if name == "Normal":
        m, s = st.norm.fit(x)
        return {"mu": m, "sigma": s}
    if name == "LogNormal":
        s, _, scale = st.lognorm.fit(x, floc=0)
        return {"mu": np.log(scale), "sigma": s}
    if name == "Exponential":
        _, scale = st.expon.fit(x, floc=0)
        return {"rate": 1 / scale}
    if name == "Gamma":
        a, _, scale = st.gamma.fit(x, floc=0)
        return {"shape": a, "rate": 1 / scale}
    if name == "Beta":
        a, b, _, _ = st.beta.fit(x, floc=0, fscale=1)
        a, b = _polish(lambda t: np.sum(st.beta.logpdf(x, *t)), [a, b])
        return {"a": a, "b": b}
    if name == "Weibull":
        return _weibull_oracle(x)
    if name == "StudentT":
        df, loc, scale = _polish(lambda t: np.sum(st.t.logpdf(x, *t)), st.t.fit(x))
        return {"df": df, "loc": loc, "scale": scale}
    if name == "Laplace":
        loc, scale = st.laplace.fit(x)
        return {"loc": loc, "scale": scale}
    if name == "Poisson":
        return {"rate": x.mean()}
    if name == "Bernoulli":
        return {"p": x.mean()}
    if name == "Binomial":
        return {"p": x.mean() / 10}
    if name == "Geometric":
        return {"p": 1 / x.mean()}
    if name == "Categorical":
        return {"p": np.bincount(x, minlength=3)[:2] / len(x)}
    if name == "Multinomial":
        return {"p": x.sum(0)[:2] / (5 * len(x))}
    if name == "MultivariateNormal":
        c = np.cov(x.T, bias=True)
        return {"mean": x.mean(0), "cov": c[np.tril_indices(2)]}
    if name == "NegativeBinomial":  # statsmodels' NB2 with an intercept only
        import statsmodels.api as sm

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = sm.NegativeBinomial(x, np.ones(len(x))).fit(disp=0, method="newton", tol=1e-14)
        return {"mean": np.exp(r.params[0]), "alpha": r.params[1]}
    raise KeyError(name)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_fit_dist_matches_scipy_or_closed_form(name):
    x = SAMPLES[name]
    res = mj.fit_dist(FAMILIES[name], x)
    assert bool(res.converged), res.message
    want = oracle_params(name, x)
    for k, v in want.items():
        np.testing.assert_allclose(np.asarray(res.params[k]), v, rtol=RTOL, err_msg=f"{name}.{k}")


def _inverse(m):
    return np.linalg.inv(np.atleast_2d(m))


def textbook_se(name, p, n):
    """Square roots of the diagonal of the inverse expected information (n observations),
    written out independently of mlejax, in the order of the fit's names."""
    tg = lambda a: sp.polygamma(1, a)  # noqa: E731
    if name in ("Normal", "LogNormal"):
        return [p["sigma"] / math.sqrt(n), p["sigma"] / math.sqrt(2 * n)]
    if name == "Poisson":
        return [math.sqrt(p["rate"] / n)]
    if name == "Exponential":
        return [p["rate"] / math.sqrt(n)]
    if name == "Bernoulli":
        return [math.sqrt(p["p"] * (1 - p["p"]) / n)]
    if name == "Binomial":
        return [math.sqrt(p["p"] * (1 - p["p"]) / (10 * n))]
    if name == "Geometric":
        return [math.sqrt(p["p"] ** 2 * (1 - p["p"]) / n)]
    if name == "Laplace":
        return [p["scale"] / math.sqrt(n)] * 2
    if name == "Gamma":  # names: rate, shape
        a, b = p["shape"], p["rate"]
        return np.sqrt(np.diag(_inverse(n * np.array([[a / b**2, -1 / b], [-1 / b, tg(a)]]))))
    if name == "Beta":
        a, b = p["a"], p["b"]
        m = np.array([[tg(a) - tg(a + b), -tg(a + b)], [-tg(a + b), tg(b) - tg(a + b)]])
        return np.sqrt(np.diag(_inverse(n * m)))
    if name in ("Categorical", "Multinomial"):
        trials = n * (1 if name == "Categorical" else 5)
        q = np.asarray(p["p"])
        return np.sqrt(q * (1 - q) / trials)
    if name == "MultivariateNormal":  # names: cov[0..2] (tril), mean[0..1]
        s = np.zeros((2, 2))
        s[np.tril_indices(2)] = p["cov"]
        s = s + np.tril(s, -1).T
        i, j = np.tril_indices(2)
        var_cov = (s[i, j] ** 2 + s[i, i] * s[j, j]) / n
        return np.concatenate([np.sqrt(var_cov), np.sqrt(np.diag(s) / n)])
    return None


TEXTBOOK_SE = ["Normal", "LogNormal", "Poisson", "Exponential", "Bernoulli", "Binomial", "Geometric",
               "Laplace", "Gamma", "Beta", "Categorical", "Multinomial", "MultivariateNormal"]


@pytest.mark.parametrize("name", TEXTBOOK_SE)
def test_stderr_equal_inverse_expected_information(name):
    x = SAMPLES[name]
    res = mj.fit_dist(FAMILIES[name], x)
    p = {k: np.asarray(v) for k, v in res.params.items()}
    want = np.asarray(textbook_se(name, {k: (float(v) if v.ndim == 0 else v) for k, v in p.items()}, len(x)))
    got = np.concatenate([np.ravel(np.asarray(v)) for _, v in sorted(res.stderr.items())])
    np.testing.assert_allclose(got, want, rtol=1e-6)


# Expected information of one observation by numerical integration of the outer product
# of scipy's scores (central differences of scipy's log-density): an oracle for the
# families whose observed information differs from the expected one.
SCIPY = {
    "Weibull": (lambda x, p: st.weibull_min.logpdf(x, p["shape"], scale=p["scale"]), (0, np.inf)),
    "StudentT": (lambda x, p: st.t.logpdf(x, p["df"], p["loc"], p["scale"]), (-np.inf, np.inf)),
    "Gamma": (lambda x, p: st.gamma.logpdf(x, p["shape"], scale=1 / p["rate"]), (0, np.inf)),
    "Beta": (lambda x, p: st.beta.logpdf(x, p["a"], p["b"]), (0, 1)),
    "Laplace": (lambda x, p: st.laplace.logpdf(x, p["loc"], p["scale"]), (-79.0, 81.0)),
}
POINTS = {
    "Weibull": {"scale": 2.0, "shape": 1.7},
    "StudentT": {"df": 4.5, "loc": 1.0, "scale": 2.0},
    "Gamma": {"rate": 0.5, "shape": 2.5},
    "Beta": {"a": 2.0, "b": 3.0},
    "Laplace": {"loc": 1.0, "scale": 2.0},
}


@pytest.mark.parametrize("name", list(SCIPY))
def test_fisher_matches_numerical_integration(name):
    logpdf, (lo, hi) = SCIPY[name]
    p = POINTS[name]
    keys = sorted(p)

    def score(x):
        out = []
        for k in keys:
            h = 1e-5 * max(abs(p[k]), 1.0)
            up, dn = dict(p), dict(p)
            up[k] += h
            dn[k] -= h
            out.append((logpdf(x, up) - logpdf(x, dn)) / (2 * h))
        return np.array(out)

    def outer(x):
        s = score(x)
        return np.outer(s, s) * np.exp(logpdf(x, p))

    kw = dict(epsabs=0, epsrel=1e-10)
    if name == "Laplace":  # the score jumps at loc
        want = si.quad_vec(outer, lo, p["loc"], **kw)[0] + si.quad_vec(outer, p["loc"], hi, **kw)[0]
    else:
        want = si.quad_vec(outer, lo, hi, **kw)[0]
    got = np.asarray(FAMILIES[name].fisher({k: jnp.asarray(v) for k, v in p.items()}))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9 * np.abs(want).max())


def test_laplace_reports_expected_information():
    x = SAMPLES["Laplace"]
    res = mj.fit_dist(D.Laplace(), x)
    assert bool(res.converged)
    np.testing.assert_allclose([res.stderr["loc"], res.stderr["scale"]],
                               [res.params["scale"] / math.sqrt(len(x))] * 2, rtol=1e-12)


def test_expected_information_option():
    x = SAMPLES["Weibull"]
    obs = mj.fit_dist(D.Weibull(), x)
    exp = mj.fit_dist(D.Weibull(), x, cov="expected")
    np.testing.assert_allclose(exp.params["shape"], obs.params["shape"], rtol=1e-12)
    f = D.Weibull().fisher(exp.params)
    np.testing.assert_allclose(np.asarray(exp.cov), np.linalg.inv(len(x) * np.asarray(f)), rtol=1e-10)
    with pytest.raises(ValueError, match="expected information"):
        mj.fit_dist(D.NegativeBinomial(), SAMPLES["NegativeBinomial"], cov="expected")


# -- weights: integer frequency weights equal repeated observations -----------------------
@pytest.mark.parametrize("name", ["Normal", "Gamma", "Laplace", "Categorical"])
def test_integer_weights_equal_repeated_data(name):
    x = SAMPLES[name]  # same shapes as the unweighted fits: no new compilation
    w = np.random.default_rng(3).integers(0, 4, len(x))
    w[0] = max(w[0], 1)
    res = mj.fit_dist(FAMILIES[name], x, weights=w)
    want = oracle_params(name, np.repeat(x, w, axis=0))
    for k, v in want.items():
        np.testing.assert_allclose(np.asarray(res.params[k]), v, rtol=RTOL, err_msg=f"{name}.{k}")


def test_closed_form_mle_is_pure_jax():
    """The weighted closed forms run under jit/vmap (EM M-steps call them)."""
    import jax

    x = jnp.asarray(SAMPLES["Normal"])
    w = jnp.stack([jnp.ones(N), jnp.linspace(0.1, 1.0, N)])
    out = jax.jit(jax.vmap(D.Normal().mle, in_axes=(None, 0)))(x, w)
    np.testing.assert_allclose(out["mu"][0], np.mean(SAMPLES["Normal"]), rtol=1e-12)
    np.testing.assert_allclose(out["mu"][1], np.average(SAMPLES["Normal"], weights=np.linspace(0.1, 1.0, N)), rtol=1e-12)


def test_conf_int_and_summary():
    res = mj.fit_dist(D.Poisson(), SAMPLES["Poisson"])
    lo, hi = res.conf_int()["rate"]
    lam, n = SAMPLES["Poisson"].mean(), N
    np.testing.assert_allclose([lo, hi], [lam - 1.959963984540054 * math.sqrt(lam / n),
                                          lam + 1.959963984540054 * math.sqrt(lam / n)], rtol=1e-9)
    assert "rate" in res.summary()


def test_refit_does_not_recompile():
    from mlejax._fit import _core_jit, _kernel_jit

    def sizes():  # the host-driven fit's model kernel and the whole compiled fit
        return _kernel_jit._cache_size(), _core_jit._cache_size()

    mj.fit_dist(D.Gamma(), SAMPLES["Gamma"])
    before = sizes()
    mj.fit_dist(D.Gamma(), SAMPLES["Gamma"][::-1] * 1.5)
    assert sizes() == before


def test_first_fit_compiles_the_start_and_the_model_only(caplog):
    """A first fit_dist compiles the closed form / start as one program and the model's
    kernel (before: each array operation of the closed form ran eagerly and compiled a
    program of its own, 8 for a Normal, 14 for a Gamma)."""
    x = np.random.default_rng(6).gamma(2.0, 1.5, 37)  # a size used nowhere else
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="jax"), jax.log_compiles(True):
        res = mj.fit_dist(D.Gamma(), x)
    names = [r.getMessage().split("Finished XLA compilation of ")[1].split(" in ")[0]
             for r in caplog.records if "Finished XLA compilation of" in r.getMessage()]
    assert set(names) <= {"jit(stage)", "jit(_mle_or_start)", "jit(_host_kernel)"}, names
    a, _, scale = st.gamma.fit(x, floc=0)
    np.testing.assert_allclose([float(res.params["shape"]), float(res.params["rate"])], [a, 1 / scale], rtol=1e-6)


# -- bad input (FAULTS rows 1, 22) ----------------------------------------------------------
@pytest.mark.parametrize(
    "family, x, match",
    [
        (D.Poisson(), [1, 2, -1], "x is outside the support of Poisson"),
        (D.Poisson(), [1, 2.5, 3], "non-negative integers"),
        (D.Bernoulli(), [0, 1, 2], "x is outside the support of Bernoulli"),
        (D.Binomial(n=3), [0, 1, 4], "at most the number of trials"),
        (D.Gamma(), [1.0, 0.0, 2.0], "positive numbers"),
        (D.Beta(), [0.2, 1.0], "strictly between 0 and 1"),
        (D.Geometric(), [0, 1, 2], "integers >= 1"),
        (D.Categorical(k=3), [0, 1, 3], "labels must be integers 0..2"),
        (D.Multinomial(k=3, n=2), [[1, 1, 1]], "summing to n=2"),
        (D.MultivariateNormal(d=2), [[1.0, 2.0, 3.0]], "rows of 2 values"),
        (D.Normal(), [1.0, np.nan, 2.0], "x contains 1 NaN/inf"),
        (D.Bernoulli(), [0, 0, 0], "boundary"),
    ],
)
def test_bad_data_refused_naming_x(family, x, match):
    with pytest.raises(ValueError, match=match):
        mj.fit_dist(family, np.asarray(x))


@pytest.mark.parametrize("w, match", [([1, -1, 1], "negative"), ([1, 1], r"shape \(2,\)"), ([0, 0, 0], "all zero")])
def test_bad_weights_refused(w, match):
    with pytest.raises(ValueError, match="weights.*" + match):
        mj.fit_dist(D.Normal(), np.array([1.0, 2.0, 4.0]), weights=np.asarray(w))


def test_bad_family_and_hyperparameters():
    with pytest.raises(TypeError, match="family must be"):
        mj.fit_dist("normal", [1.0, 2.0])
    with pytest.raises(ValueError, match="n=0"):
        D.Binomial(n=0)
    with pytest.raises(ValueError, match="k=1"):
        D.Categorical(k=1)
    res = mj.fit_dist(D.Normal, SAMPLES["Normal"])  # a class without arguments works
    np.testing.assert_allclose(res.params["mu"], np.mean(SAMPLES["Normal"]), rtol=1e-12)


EXTREME = [1e150, 1e-150, 1e60]


@pytest.mark.parametrize("scale", EXTREME)
def test_fit_dist_normal_at_extreme_scale_is_the_closed_form(scale):
    """Issue 16: Normal data scaled by 1e150 (or 1e-150, or 1e60) overflow the
    log-likelihood's derivatives (before: refused, or PRECISION_LOSS with the SE of sigma
    wrong by sqrt 2). They are fitted rescaled by a power of two and mapped back: the
    closed form (weighted mean, biased sd), the analytic Fisher standard errors
    (sigma / sqrt(n), sigma / sqrt(2n)) and log-likelihood, status SUCCESS."""
    rng = np.random.default_rng(3)
    z, w = rng.normal(2.0, 3.0, 50), rng.integers(1, 4, 50).astype(float)
    x, n = z * scale, w.sum()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = mj.fit_dist(mj.dist.Normal(), x, weights=w)
    assert r.status == mj.Status.SUCCESS
    m = np.sum(w * x) / n
    sd = np.sqrt(np.sum(w * ((z - np.sum(w * z) / n) * scale) ** 2) / n)
    np.testing.assert_allclose([float(r.params["mu"]), float(r.params["sigma"])], [m, sd], rtol=1e-10)
    np.testing.assert_allclose([float(r.stderr["mu"]), float(r.stderr["sigma"])],
                               [sd / np.sqrt(n), sd / np.sqrt(2 * n)], rtol=1e-10)
    np.testing.assert_allclose(np.asarray(r.cov), np.diag([sd**2 / n, sd**2 / (2 * n)]), rtol=1e-10, atol=1e-16 * sd**2)
    np.testing.assert_allclose(np.asarray(r.information), np.diag([n / sd**2, 2 * n / sd**2]), rtol=1e-10,
                               atol=1e-16 * n / sd**2)
    # scipy on the standardised values, shifted by the log of the unit (no overflow)
    ll = np.sum(w * st.norm.logpdf(x / sd, m / sd, 1.0)) - n * np.log(sd)
    np.testing.assert_allclose(float(r.loglik), ll, rtol=1e-10)
    lo, hi = r.conf_int()["sigma"]
    np.testing.assert_allclose([lo, hi], sd + np.array([-1, 1]) * 1.959963984540054 * sd / np.sqrt(2 * n), rtol=1e-10)


@pytest.mark.parametrize("scale", EXTREME)
def test_profile_and_bootstrap_at_extreme_scale(scale):
    """Profile intervals and the bootstrap of a fit on rescaled data work in the rescaled
    problem's coordinates (before: at 1e150 the profile interval of mu was (-inf, inf)
    without a warning, at 1e-150 a zero-width interval, and every bootstrap refit was
    NONFINITE_START). Oracle: the Normal profile deviances in closed form,
    n log(1 + (m - mu)^2 / sd^2) for mu and 2 n (log(sigma / sd) + sd^2 / (2 sigma^2) - 1/2)
    for sigma, solved with scipy; the bootstrap replicates are the unit-scale ones
    times the scale (MLE equivariance, the same resamples)."""
    rng = np.random.default_rng(3)
    z, w = rng.normal(2.0, 3.0, 50), rng.integers(1, 4, 50).astype(float)
    n, crit = w.sum(), st.chi2.ppf(0.95, 1)
    m = np.sum(w * z) / n
    sd = np.sqrt(np.sum(w * (z - m) ** 2) / n)
    half = sd * np.sqrt(np.expm1(crit / n))
    dev = lambda s: 2 * n * (np.log(s / sd) + sd**2 / (2 * s**2) - 0.5) - crit  # noqa: E731
    s_lo, s_hi = so.brentq(dev, 0.2 * sd, sd, xtol=1e-14), so.brentq(dev, sd, 5 * sd, xtol=1e-14)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = mj.fit_dist(mj.dist.Normal(), z * scale, weights=w)
        ci = r.conf_int(method="profile")
    np.testing.assert_allclose(np.array(ci["mu"]) / scale, [m - half, m + half], rtol=1e-8)
    np.testing.assert_allclose(np.array(ci["sigma"]) / scale, [s_lo, s_hi], rtol=1e-8)
    x = np.random.default_rng(5).normal(2.0, 3.0, 50)
    key = jax.random.key(0)
    unit = mj.bootstrap(mj.fit_dist(mj.dist.Normal(), x), key, 20).replicates
    big = mj.bootstrap(mj.fit_dist(mj.dist.Normal(), x * scale), key, 20).replicates
    for k in ("mu", "sigma"):
        np.testing.assert_allclose(np.asarray(big[k]) / scale, np.asarray(unit[k]), rtol=1e-9)


@pytest.mark.parametrize("scale", EXTREME)
def test_fit_dist_scale_families_at_extreme_scale(scale):
    """The same for the scale families: Exponential's closed form (rate 1/mean, SE
    rate / sqrt(n)), Gamma against scipy's fit (in the data's units) with its analytic
    information (n [[trigamma(a), -1/b], [-1/b, a/b^2]]; observed = expected), Laplace's
    median and mean absolute deviation with SEs b / sqrt(n), Weibull against scipy."""
    z = np.random.default_rng(4).gamma(2.5, 2.0, 80)
    x, n = z * scale, z.size
    r = mj.fit_dist(mj.dist.Exponential(), x)
    rate = 1.0 / x.mean()
    assert r.status == mj.Status.SUCCESS
    np.testing.assert_allclose([float(r.params["rate"]), float(r.stderr["rate"])], [rate, rate / np.sqrt(n)], rtol=1e-10)
    np.testing.assert_allclose(float(r.loglik), n * np.log(rate) - n, rtol=1e-10)

    r = mj.fit_dist(mj.dist.Gamma(), x)
    a, _, sc = st.gamma.fit(z, floc=0)
    b = 1.0 / (sc * scale)
    assert r.status == mj.Status.SUCCESS
    np.testing.assert_allclose([float(r.params["shape"]), float(r.params["rate"])], [a, b], rtol=1e-6)
    a, b = float(r.params["shape"]), float(r.params["rate"])  # the SEs at mlejax's estimate
    cov = np.linalg.inv(n * np.array([[a / b**2, -1 / b], [-1 / b, float(sp.polygamma(1, a))]]))  # rate, shape
    np.testing.assert_allclose([float(r.stderr["rate"]), float(r.stderr["shape"])], np.sqrt(np.diag(cov)), rtol=1e-8)

    r = mj.fit_dist(mj.dist.Laplace(), x)
    med = np.median(x)
    mad = np.mean(np.abs(x - med))
    assert r.status == mj.Status.SUCCESS
    np.testing.assert_allclose([float(r.params["loc"]), float(r.params["scale"])], [med, mad], rtol=1e-10)
    np.testing.assert_allclose([float(r.stderr["loc"]), float(r.stderr["scale"])], [mad / np.sqrt(n)] * 2, rtol=1e-10)

    r = mj.fit_dist(mj.dist.Weibull(), x)
    lz = np.log(z)  # the shape solves the profile score equation; scale = mean(z^k)^(1/k)
    k = so.brentq(lambda k: np.sum(z**k * lz) / np.sum(z**k) - 1 / k - lz.mean(), 0.1, 20, xtol=1e-14)
    assert r.status == mj.Status.SUCCESS
    np.testing.assert_allclose([float(r.params["shape"]), float(r.params["scale"])],
                               [k, np.mean(z**k) ** (1 / k) * scale], rtol=1e-9)


def test_fit_dist_extreme_scale_refused_where_rescaling_is_not_exact():
    """Families not known to scale with the data (a Custom family), a MAP fit (the
    prior is in the data's units) and data whose mapped-back covariance would overflow
    (a MultivariateNormal covariance's variance grows like s^4) keep the clear error."""
    x = np.random.default_rng(3).normal(2.0, 3.0, 50)
    refused = r"x has values of magnitude .*Rescale the data"
    normal = mj.dist.Custom(lambda p, x: st_jax.norm.logpdf(x, p["mu"], p["sigma"]), {"mu": 0.0, "sigma": mj.Positive(1.0)})
    with pytest.raises(ValueError, match=refused):
        mj.fit_dist(normal, x * 1e150)
    with pytest.raises(ValueError, match=refused):
        mj.fit_dist(mj.dist.MultivariateNormal(2), np.c_[x, x[::-1]] * 1e150)
    with pytest.raises(ValueError, match=refused):
        mj.fit_dist(mj.dist.Normal(), x * 1e150, log_prior=lambda p: -0.5 * p["mu"] ** 2)
    with pytest.raises(ValueError, match=refused):
        mj.fit_dist(mj.dist.Normal(), x * 1e200)  # var(sigma) = sigma^2 / 2n: beyond float64
