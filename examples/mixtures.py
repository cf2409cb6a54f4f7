"""Gaussian mixtures: how many components, the fit, its standard errors and a plot.

Run:  python examples/mixtures.py
"""

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from _common import have_matplotlib, out_path, size  # noqa: E402

import mlejax as mj  # noqa: E402

rng = np.random.default_rng(3)
n = size(30_000, 1_500)
means = np.array([[0.0, 0.0], [4.0, 1.0], [1.0, 4.5]])
x = np.concatenate([rng.multivariate_normal(m, np.eye(2) * s, n // 3) for m, s in zip(means, (1.0, 0.6, 0.8))])

sel = mj.select_components(mj.GaussianMixture(1), x, n_components=range(1, 6), key=jax.random.key(0), n_init=3)
print(sel)
rec = mj.progress.Recorder()  # the log-likelihood at every EM iteration, for the trace plot
res = mj.em(mj.GaussianMixture(sel.best), x, key=jax.random.key(0), n_init=3, progress=rec)
print(res)
print("means +- standard errors:\n", np.asarray(res.params["means"]).round(3), "\n",
      np.asarray(res.stderr["means"]).round(3))
assert sel.best == 3

if have_matplotlib():
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.5))
    mj.plot.mixture(res, x, ax=a)
    mj.plot.trace(rec, ax=b)
    print("plot:", mj.plot.save(a, out_path("mixture.png")))
