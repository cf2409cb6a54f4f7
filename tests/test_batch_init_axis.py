"""fit_batch given per-fit starts (a leading batch axis on init) without init_axis:
an error that says init_axis=0, not a broadcasting error from inside loglik."""

import warnings

import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy import stats

import mlejax as mj


def norm_ll(p, x):
    return jnp.sum(stats.norm.logpdf(x, p["mu"], p["sigma"]))


def test_batched_init_without_init_axis_says_init_axis_0():
    x = np.random.default_rng(0).normal(size=(4, 30))
    starts = {"mu": jnp.zeros(4), "sigma": mj.Positive(jnp.ones(4))}
    with pytest.raises(ValueError, match=r"pass init_axis=0") as err:
        mj.fit_batch(norm_ll, starts, x)
    assert "length 4, the number of datasets" in str(err.value)
    assert isinstance(err.value.__cause__, TypeError)  # the user's function failed on the shapes
    res = mj.fit_batch(norm_ll, starts, x, init_axis=0)  # the fix the message names
    np.testing.assert_allclose(np.asarray(res.params["mu"]), x.mean(axis=1), rtol=1e-10)


def test_a_shared_vector_start_of_the_batch_length_is_still_shared():
    """A leaf whose length happens to equal the batch size but that loglik uses as
    one parameter vector is a valid shared start: no error."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 40, 3)) + np.array([1.0, 2.0, 3.0])

    def ll(p, x):  # mu: one mean per column (3 columns, 3 datasets)
        return jnp.sum(stats.norm.logpdf(x, p["mu"], 1.0))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = mj.fit_batch(ll, {"mu": jnp.zeros(3)}, x)
    np.testing.assert_allclose(np.asarray(res.params["mu"]), x.mean(axis=1), rtol=1e-10)
