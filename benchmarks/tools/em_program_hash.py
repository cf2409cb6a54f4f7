"""Hash of the lowered GMM EM program (benchmarks/README.md, issue 9): two trees
that print the same hash compile the same computation.

Usage: PYTHONPATH=<tree> python benchmarks/tools/em_program_hash.py out.txt
"""

import hashlib
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

import mlejax as mj  # noqa: E402
from mlejax.mixture import _em  # noqa: E402

x = jnp.asarray(np.random.default_rng(0).normal(size=(2000, 4)))
gm = mj.GaussianMixture(5, "full")
progress = [0] if "progress_every" in open(_em.__file__).read() else []  # issue 15's extra static argument
txt = _em._em_jit.lower(gm.static(), gm.hyper(), x, None, jax.random.key(0), None, jnp.asarray(0.0),
                        jnp.asarray(50, jnp.int32), "kmeans", 1, *progress).as_text()
# source locations (file paths, line numbers) differ between trees: strip them
lines = re.sub(r" loc\(.*?\)$", "", txt, flags=re.M).splitlines()
core = "\n".join(line for line in lines if not line.startswith("#loc"))
print(mj.__file__, len(core), hashlib.sha256(core.encode()).hexdigest()[:16])
with open(sys.argv[1], "w") as f:
    f.write(core)
