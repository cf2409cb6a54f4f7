"""Run as a script (by tests/test_shard.py) with 8 forced CPU devices: each fit on data
sharded over the observation (or batch) axis against the same fit on host data.
Prints one JSON line: per check, the largest differences, the input shardings, the
bytes each device holds, and any sharded array copied whole to the host."""

import json
import os
import sys

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax._src import array as jax_array  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec  # noqa: E402

jax.config.update("jax_enable_x64", True)
import mlejax as mj  # noqa: E402

# every copy of a multi-device array to the host, by shape (results are small; a data
# array copied whole would show its own shape here)
GATHERED = []
_value = jax_array.ArrayImpl._value


def _spy(self):
    if len(self.sharding.device_set) > 1:
        GATHERED.append(tuple(self.shape))
    return _value.fget(self)


jax_array.ArrayImpl._value = property(_spy)

MESH = Mesh(np.array(jax.devices()), ("obs",))
ROWS = NamedSharding(MESH, PartitionSpec("obs"))
rng = np.random.default_rng(0)


def shard(tree):
    return jax.tree_util.tree_map(lambda a: jax.device_put(a, ROWS), tree)


def flat(tree):
    return np.concatenate([np.ravel(np.asarray(a, float)) for a in jax.tree_util.tree_leaves(tree)])


def compare(name, host_res, dev_res, dev_data):
    del GATHERED[:]
    leaves = jax.tree_util.tree_leaves(dev_data)
    return name, {
        "params": float(np.max(np.abs(flat(host_res.params) - flat(dev_res.params)))),
        "stderr": float(np.max(np.abs(flat(host_res.stderr) - flat(dev_res.stderr)))),
        "loglik": float(np.max(np.abs(np.asarray(host_res.loglik) - np.asarray(dev_res.loglik)))),
        "finite": bool(np.all(np.isfinite(flat(dev_res.stderr)))),
        "shardings": [str(a.sharding.spec) for a in leaves],
        "n_devices": [len(a.sharding.device_set) for a in leaves],
        "bytes_per_device": [sorted({int(s.data.nbytes) for s in a.addressable_shards}) for a in leaves],
        "bytes_total": [int(a.nbytes) for a in leaves],
        "data_shapes": [list(a.shape) for a in leaves],
    }


def run(name, fn, data):
    host = fn(data)
    dev_data = shard(data)
    del GATHERED[:]
    dev = fn(dev_data)
    gathered = [list(s) for s in GATHERED]
    out = compare(name, host, dev, dev_data)
    out[1]["gathered"] = gathered
    out[1]["result_sharding"] = str(getattr(jax.tree_util.tree_leaves(dev.params)[0], "sharding", None))
    return out


def custom():
    x = rng.normal(1.0, 2.0, 800)

    def loglik(p, x):
        return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], p["sigma"]))

    return run("custom", lambda d: mj.fit(loglik, {"mu": 0.0, "sigma": mj.Positive(1.0)}, d), x)


def glm():
    X = np.column_stack([np.ones(800), rng.normal(size=(800, 2))])
    y = (rng.random(800) < jax.nn.sigmoid(X @ np.array([-0.5, 1.0, -0.7]))).astype(float)
    return run("glm", lambda d: mj.glm(d[0], d[1], "logit"), (y, X))


def mixture():
    z = np.concatenate([rng.normal(-2, 1, (400, 2)), rng.normal(2, 0.7, (400, 2))])
    init = {"weights": np.array([0.5, 0.5]), "means": np.array([[-1.0, -1.0], [1.0, 1.0]]),
            "covariances": np.stack([np.eye(2)] * 2)}
    return run("mixture", lambda d: mj.em(mj.GaussianMixture(2), d, init=init, stderr=True), z)


def batch():
    x = rng.normal(1.0, 2.0, (16, 50))

    def loglik(p, x):
        return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], p["sigma"]))

    init = {"mu": 0.0, "sigma": mj.Positive(1.0)}
    return run("fit_batch", lambda d: mj.fit_batch(loglik, init, d), x)


if __name__ == "__main__":
    assert len(jax.devices()) == 8, jax.devices()
    print(json.dumps(dict(f() for f in (custom, glm, mixture, batch))))
    sys.stdout.flush()
