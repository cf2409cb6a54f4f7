"""Softmax regression (mj.glm(model="multinomial")) against statsmodels' MNLogit on the
anes96 data shipped with statsmodels (party identification, 7 classes), with formulas
and frequency weights; separation on iris (setosa is linearly separable)."""

import warnings

import jax.numpy as jnp
import numpy as np
import pytest
import statsmodels.api as sm
from scipy.special import logsumexp

import mlejax as mj
from mlejax.models import _multinomial

COLUMNS = ["logpopul", "selfLR", "age", "educ", "income"]


@pytest.fixture(scope="module")
def anes():
    d = sm.datasets.anes96.load_pandas()
    x = sm.add_constant(d.exog[COLUMNS])
    ref = sm.MNLogit(d.endog, x).fit(disp=0, method="newton", tol=1e-12, maxiter=100)
    return d, x, ref


def _same(res, ref):
    assert int(res.status) == int(mj.Status.SUCCESS), res.message
    np.testing.assert_allclose(np.asarray(res.params["beta"]), ref.params.values, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(np.asarray(res.stderr["beta"]), ref.bse.values, rtol=1e-6)
    assert float(res.loglik) == pytest.approx(ref.llf, rel=1e-10)
    assert float(res.aic) == pytest.approx(ref.aic, rel=1e-10)
    assert float(res.bic) == pytest.approx(ref.bic, rel=1e-10)


def test_equals_statsmodels_mnlogit(anes):
    d, x, ref = anes
    res = mj.glm(d.endog, x, "multinomial")
    _same(res, ref)
    assert res.extras["classes"] == tuple(range(7))  # class 0 is the reference
    assert res.names[:7] == tuple(f"const[PID={k}]" for k in range(1, 7)) + ("logpopul[PID=1]",)
    assert res.extras["separation"] is None


def test_formula_equals_statsmodels_mnlogit(anes):
    pytest.importorskip("formulaic")
    d, _, ref = anes
    res = mj.glm("PID ~ " + " + ".join(COLUMNS), data=d.data, model="multinomial")
    _same(res, ref)
    assert res.names[0] == "Intercept[PID=1]" and res.names[-1] == "income[PID=6]"


def test_frequency_weights_equal_repeated_rows(anes):
    d, x, _ = anes
    w = 1.0 + (np.arange(len(x)) % 3 == 0)
    rows = np.repeat(np.arange(len(x)), w.astype(int))
    ref = sm.MNLogit(d.endog.values[rows], x.values[rows]).fit(disp=0, method="newton", tol=1e-12, maxiter=100)
    res = mj.glm(d.endog, x, "multinomial", weights=w)
    np.testing.assert_allclose(np.asarray(res.params["beta"]), ref.params, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(np.asarray(res.stderr["beta"]), ref.bse, rtol=1e-6)
    assert float(res.loglik) == pytest.approx(ref.llf, rel=1e-10)


def test_two_classes_are_the_logit_model():
    d = sm.datasets.spector.load_pandas()
    y, x = d.endog.values, sm.add_constant(d.exog.values)
    res, logit = mj.glm(y, x, "multinomial"), mj.glm(y, x, "logit")
    np.testing.assert_allclose(np.asarray(res.params["beta"])[:, 0], np.asarray(logit.params["beta"]), rtol=1e-8)
    np.testing.assert_allclose(np.asarray(res.stderr["beta"])[:, 0], np.asarray(logit.stderr["beta"]), rtol=1e-8)
    assert float(res.loglik) == pytest.approx(float(logit.loglik), rel=1e-12)


def test_separation_flagged_on_iris():
    """setosa is linearly separable from the other two species: no MLE."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    labels = iris.target_names[iris.target]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = mj.glm(labels, sm.add_constant(iris.data), "multinomial")
    assert any(issubclass(w.category, mj.PerfectSeparationWarning) for w in caught)
    assert int(res.status) == int(mj.Status.DIVERGING)
    assert res.extras["separation"] == "quasi-complete" and res.extras["n_separated"] >= 50
    assert np.all(np.isnan(np.asarray(res.stderr["beta"])))
    assert res.extras["classes"] == ("setosa", "versicolor", "virginica")
    assert res.names[0] == "const[y=versicolor]"


def test_loglik_is_stable_for_large_predictors():
    x = np.array([[1.0, 800.0], [1.0, -900.0], [1.0, 5.0]])
    onehot = np.eye(3)
    beta = np.array([[0.0, 1.0], [1.0, 2.0]])
    eta = np.column_stack([np.zeros(3), x @ beta])
    want = np.sum(eta[np.arange(3), np.arange(3)] - logsumexp(eta, axis=1))
    got = _multinomial.multinomial_loglik({"beta": jnp.asarray(beta)}, (onehot, x, np.ones(3)))
    assert np.isfinite(float(got)) and float(got) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("y, kw, match", [
    (np.zeros(5), {}, "at least two classes"),
    (np.arange(5.0) % 2, {"offset": np.zeros(5)}, "offset= does not apply"),
    (np.arange(5.0) % 2, {"link": "probit"}, "link= does not apply"),
    (np.array([0.0, 1.0, np.nan, 1.0, 0.0]), {}, "y contains NaN"),
])
def test_bad_input_is_refused(y, kw, match):
    with pytest.raises(ValueError, match=match):
        mj.glm(y, np.ones((5, 1)), "multinomial", **kw)
