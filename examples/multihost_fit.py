"""Fit one model on data spread over several processes (hosts) with jax.distributed.

Every process runs this same script; each holds only its own rows. Here the processes
are on one machine and each has 4 CPU devices, so 2 processes give a global mesh of 8:

    python examples/multihost_fit.py 0 2 12355 &   # process 0 of 2, coordinator port
    python examples/multihost_fit.py 1 2 12355

On a cluster, run it once per host (e.g. under SLURM, where jax.distributed.initialize()
reads the process id and count itself) and drop the forced CPU device count.
"""

import os
import sys

PROCESS, N_PROCESSES, PORT = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

import jax  # noqa: E402

jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU collectives across processes
jax.distributed.initialize(coordinator_address=f"localhost:{PORT}", num_processes=N_PROCESSES, process_id=PROCESS)
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec  # noqa: E402

import mlejax as mj  # noqa: E402

N = 800
mesh = Mesh(np.array(jax.devices()), ("obs",))  # all devices of all processes
rows = NamedSharding(mesh, PartitionSpec("obs"))

# this process's rows only (a real job reads its own shard of the files)
everything = np.random.default_rng(0).normal(1.0, 2.0, N)
mine = np.array_split(everything, N_PROCESSES)[PROCESS]
x = jax.make_array_from_process_local_data(rows, mine, (N,))


def loglik(p, x):
    return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], p["sigma"]))


res = mj.fit(loglik, {"mu": 0.0, "sigma": mj.Positive(1.0)}, x)
print(f"process {PROCESS}: devices {jax.local_device_count()} local / {jax.device_count()} global; "
      f"mu {float(res.params['mu']):.12f} sigma {float(res.params['sigma']):.12f} "
      f"se {float(res.stderr['mu']):.12f} {float(res.stderr['sigma']):.12f} loglik {float(res.loglik):.10f}",
      flush=True)
jax.distributed.shutdown()
