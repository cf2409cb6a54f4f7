"""Jaxpr hashes of each GLM log-likelihood and its Hessian (benchmarks/README.md,
issue 9): equal hashes in two trees mean the same computation.

Usage: PYTHONPATH=<tree> python benchmarks/tools/glm_program_hash.py
"""

import hashlib

import jax
import jax.numpy as jnp

jax.config.update("jax_enable_x64", True)

from mlejax.models._glm import LINKS, MODELS, glm_loglik  # noqa: E402

n, p = 50, 3
data = (jnp.ones(n), jnp.ones((n, p)), jnp.zeros(n), jnp.ones(n))
for m, (resp, link) in sorted(MODELS.items()):
    nu = {"linear": "sigma", "negbin": "alpha", "gamma": "shape"}.get(m)
    params = {"beta": jnp.zeros(p), **({nu: jnp.asarray(1.0)} if nu else {})}
    f = glm_loglik(resp, LINKS[link])
    t = str(jax.make_jaxpr(f)(params, data))
    g = str(jax.make_jaxpr(jax.hessian(f))(params, data))
    digest = lambda s: hashlib.sha256(s.encode()).hexdigest()[:12]  # noqa: E731
    print(m, digest(t), len(t.splitlines()), digest(g), len(g.splitlines()))
