"""Three kinds of confidence interval for a skewed problem: Wald, profile likelihood,
bootstrap; with the profile and bootstrap plots.

Run:  python examples/intervals.py

With 25 exponential waiting times the log-likelihood of the rate is visibly
asymmetric: the Wald interval (symmetric) misses it, the profile interval follows
it, and the bootstrap distribution shows the same skew.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

jax.config.update("jax_enable_x64", True)

from _common import have_matplotlib, out_path, size  # noqa: E402

import mlejax as mj  # noqa: E402

t = np.random.default_rng(8).exponential(1 / 0.4, 25)


def gamma_loglik(p, t):  # a gamma model of the waits (the exponential is shape = 1)
    return jnp.sum(p["shape"] * jnp.log(p["rate"]) + (p["shape"] - 1) * jnp.log(t) - p["rate"] * t
                   - gammaln(p["shape"]))


res = mj.fit(gamma_loglik, {"shape": mj.Positive(1.0), "rate": mj.Positive(1.0)}, t)
boot = mj.bootstrap(res, jax.random.key(0), n_boot=size(2000, 300))
for name in res.names:
    w = [float(v) for v in res.conf_int()[name]]
    p = [float(v) for v in res.conf_int(method="profile")[name]]
    b = [float(v) for v in boot.conf_int(method="percentile")[name]]
    print(f"{name:>6}: Wald [{w[0]:.3f}, {w[1]:.3f}]  profile [{p[0]:.3f}, {p[1]:.3f}]  "
          f"bootstrap [{b[0]:.3f}, {b[1]:.3f}]")
    assert p[0] > w[0]  # the profile interval is pulled away from zero

if have_matplotlib():
    import matplotlib.pyplot as plt

    fig, axs = plt.subplots(1, 3, figsize=(15, 4.2))
    mj.plot.profile(res, "shape", ax=axs[0])
    mj.plot.profile_2d(res, ("shape", "rate"), n=size(31, 11), ax=axs[1])
    mj.plot.bootstrap(boot, "shape", ax=axs[2])
    print("plot:", mj.plot.save(axs, out_path("intervals.png")))
