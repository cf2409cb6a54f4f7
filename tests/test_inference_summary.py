"""Display and export: golden summary text, HTML, to_dict / to_dataframe, and the float32
precision guard (run in a subprocess, so the session keeps x64 on)."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mlejax as mj

X = np.array([4.1, 5.3, 3.8, 6.0, 5.1, 4.7, 5.6, 4.4])
MEAN = X.mean()
SD = np.sqrt(np.mean((X - MEAN) ** 2))


def normal_ll(p, x):
    return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], p["sigma"]))


@pytest.fixture(scope="module")
def res():
    # started at the closed-form MLE, so the table does not depend on the solver's path
    # (one iteration: Newton checks the decrement there and takes its last exact step)
    return mj.fit(normal_ll, {"mu": MEAN, "sigma": mj.Positive(SD)}, X)


GOLDEN = """\
                        mlejax maximum-likelihood fit
==============================================================================
Method:                         newton   Log-likelihood:              -8.61377
Converged:                        True   AIC:                          21.2275
Iterations:                          1   BIC:                          21.3864
No. observations:                    8   Covariance:                  observed
==============================================================================
                  coef    std err        z    P>|z|     [0.025     0.975]
------------------------------------------------------------------------------
mu              4.8750     0.2511   19.415    0.000     4.3829     5.3671
sigma           0.7102     0.1775    4.000    0.000     0.3622     1.0582
==============================================================================
Flags: none
Status: SUCCESS: converged: the Newton decrement (log-likelihood still to
gain) is below tol (or the Newton step is below 1e-6 standard errors) and the
observed information is positive definite (a strict local maximum)."""


def test_golden_summary(res):
    # closed forms behind the golden numbers: se(mu) = s/sqrt(n), se(sigma) = s/sqrt(2n)
    assert f"{MEAN:.4f}" == "4.8750" and f"{SD / np.sqrt(8):.4f}" == "0.2511"
    assert f"{SD / 4:.4f}" == "0.1775"
    assert res.summary() == GOLDEN
    assert str(res) == GOLDEN and repr(res) == GOLDEN


def test_summary_level_and_cov_type(res):
    text = res.summary(level=0.9)
    assert "[0.05      0.95]" in text
    lo = MEAN - 1.6448536269514722 * SD / np.sqrt(8)
    assert f"{lo:.4f}" in text
    assert "Covariance:                  sandwich" in res.with_cov("sandwich").summary()


def test_html_repr(res):
    html = res._repr_html_()
    assert html.startswith("<div>") and html.endswith("</div>")
    assert "<th>mu</th><td>4.8750</td><td>0.2511</td>" in html
    assert "Covariance:</th><td>observed</td>" in html and "<p>Flags: none</p>" in html
    assert "P&gt;|z|" in html


def test_to_dict(res):
    d = res.to_dict()
    json.dumps(d)  # plain Python numbers only
    np.testing.assert_allclose(d["params"]["mu"], MEAN, rtol=1e-12)
    np.testing.assert_allclose(d["stderr"]["sigma"], SD / 4, rtol=1e-10)
    assert d["names"] == ["mu", "sigma"] and d["nobs"] == 8 and d["nparams"] == 2
    assert d["status"] == "SUCCESS" and d["converged"] is True and d["cov_type"] == "observed"
    assert d["flags"]["params_at_bound"] == [] and d["flags"]["not_identified"] is False
    np.testing.assert_allclose(d["aic"], 4 - 2 * d["loglik"], rtol=1e-12)
    np.testing.assert_allclose(d["bic"], 2 * np.log(8) - 2 * d["loglik"], rtol=1e-12)


def test_to_dataframe(res):
    df = res.to_dataframe()
    assert list(df.index) == ["mu", "sigma"]
    assert list(df.columns) == ["coef", "std err", "z", "P>|z|", "[0.025", "0.975]"]
    np.testing.assert_allclose(df.loc["sigma", "z"], 4.0, rtol=1e-10)
    np.testing.assert_allclose(df.loc["mu", "std err"], SD / np.sqrt(8), rtol=1e-10)
    assert list(res.to_dataframe(level=0.9).columns)[-2:] == ["[0.05", "0.95]"]


def test_to_dataframe_without_pandas(res, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # makes `import pandas` fail
    with pytest.raises(ImportError, match="needs pandas.*pip install pandas.*to_dict"):
        res.to_dataframe()


def test_export_refuses_batched_results(res):
    # a batch of two results, shaped as jax.vmap(fit) returns it
    fits = jax.tree_util.tree_map(lambda a: jnp.stack([a, a]), res)
    with pytest.raises(ValueError, match="needs a single concrete fit"):
        fits.to_dict()
    with pytest.raises(ValueError, match="needs a single concrete fit"):
        fits.conf_int(method="profile")
    with pytest.raises(ValueError, match="needs a single concrete fit"):
        fits.profile("mu", [1.0])
    one = jax.tree_util.tree_map(lambda a: a[1], fits)
    np.testing.assert_allclose(one.to_dict()["params"]["mu"], MEAN, rtol=1e-12)


def test_float32_standard_errors_warn():
    script = textwrap.dedent(
        """
        import warnings
        import jax, jax.numpy as jnp, numpy as np
        import mlejax as mj
        assert jnp.asarray(0.0).dtype == jnp.float32
        def ll(p, x):
            return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], p["sigma"]))
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            res = mj.fit(ll, {"mu": 0.0, "sigma": mj.Positive(1.0)}, np.array([1.0, 2.0, 4.0]))
        hits = [x for x in w if issubclass(x.category, mj.PrecisionWarning)]
        assert res.stderr["mu"].dtype == jnp.float32
        print(str(hits[0].message) if hits else "NO WARNING")
        """
    )
    env = dict(os.environ, JAX_ENABLE_X64="0", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    msg = out.stdout.strip()
    assert "float32" in msg and "jax.config.update('jax_enable_x64', True)" in msg, msg
