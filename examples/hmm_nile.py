"""A two-state Gaussian HMM of the Nile's annual flow (1871-1970, statsmodels), fitted by
Baum-Welch, with standard errors from the exact observed information.

Run: python examples/hmm_nile.py
"""

import jax
import numpy as np
import statsmodels.api as sm

import mlejax as mj

jax.config.update("jax_enable_x64", True)

df = sm.datasets.nile.load_pandas().data
flow = df["volume"].to_numpy() / 100.0  # in 10^10 m^3
res = mj.em(mj.GaussianHMM(2, "diag"), flow, n_init=8, key=jax.random.key(0), tol=1e-8)
print(res.message)
print(f"loglik {float(res.loglik):.3f}   aic {float(res.aic):.2f}   bic {float(res.bic):.2f}\n")
p, se = res.params, res.stderr
for k in range(2):
    print(f"state {k}: mean flow {float(p['means'][k, 0]):7.3f} (se {float(se['means'][k, 0]):.3f})   "
          f"variance {float(p['covariances'][k, 0]):6.3f} (se {float(se['covariances'][k, 0]):.3f})   "
          f"stay {float(p['transmat'][k, k]):.4f} (se {float(se['transmat'][k, k]):.4f})")
path = np.asarray(res.decode(flow))
years = df["year"].to_numpy().astype(int)
switch = years[1:][np.diff(path) != 0]
print("\nViterbi state switches in:", switch.tolist())
print("posterior of the state at 1898/1899:", np.round(np.asarray(res.predict_proba(flow))[27:29], 3).tolist())
