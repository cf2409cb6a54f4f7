"""mlejax quickstart: the textbook maximum-likelihood fits on built-in data.

Run:  python examples/quickstart.py

Each block writes a log-likelihood as a plain JAX function, calls ``mj.fit`` and
prints the summary, next to the closed form it must reproduce.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy import stats

jax.config.update("jax_enable_x64", True)  # float64 for inference: the user's choice

import mlejax as mj  # noqa: E402
from mlejax.datasets import censored_weibull, challenger  # noqa: E402

rng = np.random.default_rng(2026)


def show(title, res, closed_form):
    print(f"\n### {title}\n{res}\nclosed form: {closed_form}")


# 1. The coin: 3 heads in 5 flips. MLE p = 3/5, se = sqrt(p(1-p)/n).
def bernoulli(p, x):
    return jnp.sum(x * jnp.log(p["p"]) + (1 - x) * jnp.log1p(-p["p"]))


coin = jnp.array([1, 0, 1, 1, 0])
res = mj.fit(bernoulli, {"p": mj.Bounded(0.0, 1.0, 0.5)}, coin)
show("Bernoulli: 3 heads in 5 flips", res, f"p = 0.6, se = {np.sqrt(0.6 * 0.4 / 5):.6f}")


# 2. Normal: the MLE of the variance divides by n (biased), not n - 1.
def normal(p, x):
    return jnp.sum(stats.norm.logpdf(x, p["mu"], p["sigma"]))


x = rng.normal(10.0, 2.0, size=200)
res = mj.fit(normal, {"mu": 0.0, "sigma": mj.Positive(1.0)}, x)
show("Normal", res, f"mu = {x.mean():.6f}, sigma = sqrt(mean((x - mu)^2)) = {x.std():.6f} "
     f"(the n-1 version would be {x.std(ddof=1):.6f})")
var = res.delta(lambda p: p["sigma"] ** 2)  # invariance + delta method
print(f"sigma^2 = {float(var.estimate):.6f} +- {float(var.stderr):.6f}")


# 3. Poisson counts: MLE = sample mean, se = sqrt(mean / n).
def poisson(p, k):
    return jnp.sum(stats.poisson.logpmf(k, p["rate"]))


k = rng.poisson(3.2, size=150)
res = mj.fit(poisson, {"rate": mj.Positive(1.0)}, k)
show("Poisson", res, f"rate = {k.mean():.6f}, se = {np.sqrt(k.mean() / k.size):.6f}")


# 4. Exponential waiting times: MLE rate = 1 / mean, se = rate / sqrt(n).
def exponential(p, t):
    return jnp.sum(jnp.log(p["rate"]) - p["rate"] * t)


t = rng.exponential(1 / 0.7, size=120)
res = mj.fit(exponential, {"rate": mj.Positive(1.0)}, t)
show("Exponential", res, f"rate = {1 / t.mean():.6f}, se = {1 / t.mean() / np.sqrt(t.size):.6f}")


# 5. Logistic regression: O-ring distress against launch temperature (Challenger data).
def logistic(beta, d):
    eta = beta[0] + beta[1] * d["temperature"]
    return jnp.sum(d["failure"] * eta - jnp.logaddexp(0.0, eta))


res = mj.fit(logistic, jnp.zeros(2), challenger())
show("Logistic regression (Challenger O-rings)", res,
     "statsmodels Logit gives intercept 15.0429, slope -0.2322")
p31 = res.delta(lambda b: jax.nn.sigmoid(b[0] + b[1] * 31.0))
print(f"P(distress at 31 F, the launch temperature) = {float(p31.estimate):.3f} "
      f"+- {float(p31.stderr):.3f}")


# 6. A custom likelihood: right-censored Weibull regression, started at zero slopes
#    (plain Newton diverges from there; mlejax's damped Newton does not).
def weibull_regression(p, d):
    k = jnp.exp(p["log_shape"])
    z = (jnp.log(d["t"]) - d["X"] @ p["beta"]) * k  # log (t / scale)^k
    # events contribute the log-density, censored times the log-survival
    return jnp.sum(d["event"] * (jnp.log(k) + z - jnp.log(d["t"])) - jnp.exp(z))


w = censored_weibull(n=2000, seed=1)
res = mj.fit(weibull_regression, {"beta": jnp.zeros(6), "log_shape": 0.0},
             {"X": w["X"], "t": w["t"], "event": w["event"]})
show("Right-censored Weibull regression", res,
     f"simulated with beta = {np.round(w['beta'], 3).tolist()}, log shape = {np.log(w['shape']):.4f}")
shape = res.delta(lambda p: jnp.exp(p["log_shape"]))
print(f"Weibull shape = {float(shape.estimate):.4f} +- {float(shape.stderr):.4f} (true 1.5)")
