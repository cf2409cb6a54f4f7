"""Formula GLMs (formulaic) against statsmodels' formula API on the Fair affairs data
(statsmodels' shipped dataset): same parameter names, same numbers to 1e-8."""

import sys

import numpy as np
import pytest

import mlejax as mj

pytest.importorskip("formulaic")
sm = pytest.importorskip("statsmodels.api")
smf = pytest.importorskip("statsmodels.formula.api")

TERMS = "rate_marriage + np.log(age) + yrs_married + C(religious) + C(occupation)"


@pytest.fixture(scope="module")
def fair():
    df = sm.datasets.fair.load_pandas().data.copy()
    df["any_affair"] = (df["affairs"] > 0).astype(float)
    return df


def _same(res, ref, stderr=None, rtol=1e-8):
    assert set(res.names[: len(ref.params)]) == set(ref.params.index)
    beta = dict(zip(res.names, np.asarray(res.params["beta"])))
    se = dict(zip(res.names, np.asarray(res.stderr["beta"] if stderr is None else stderr)))
    for name in ref.params.index:
        assert beta[name] == pytest.approx(ref.params[name], rel=rtol, abs=1e-10), name
        assert se[name] == pytest.approx(ref.bse[name], rel=rtol), name
    assert float(res.loglik) == pytest.approx(ref.llf, rel=1e-10)


def test_poisson_formula_equals_statsmodels(fair):
    f = "affairs ~ " + TERMS
    res = mj.glm(f, data=fair, model="poisson")
    _same(res, smf.poisson(f, fair).fit(disp=0, tol=1e-12, maxiter=200))
    assert "C(religious)[T.2.0]" in res.names and res.names[0] == "Intercept"


def test_logit_formula_equals_statsmodels(fair):
    f = "any_affair ~ " + TERMS
    _same(mj.glm(f, data=fair, model="logit"), smf.logit(f, fair).fit(disp=0, tol=1e-12, maxiter=200))


def test_linear_formula_equals_statsmodels_ols(fair):
    f = "np.log1p(affairs) ~ " + TERMS
    res = mj.glm(f, data=fair, model="linear")
    _same(res, smf.ols(f, fair).fit(), stderr=res.extras["stderr_unbiased"])
    assert res.names[-1] == "sigma"


def test_rows_with_missing_values_dropped_like_statsmodels(fair):
    df = fair.copy()
    df.loc[[3, 10, 200], "yrs_married"] = np.nan
    f = "affairs ~ " + TERMS
    res = mj.glm(f, data=df, model="poisson", weights=np.ones(len(df)))
    ref = smf.poisson(f, df).fit(disp=0, tol=1e-12, maxiter=200)
    assert res.nobs == len(df) - 3
    _same(res, ref)


def test_formula_errors(fair):
    with pytest.raises(ValueError, match="needs a response"):
        mj.glm("affairs", data=fair, model="poisson")
    with pytest.raises(ValueError, match="cannot be evaluated"):
        mj.glm("affairs ~ no_such_column", data=fair, model="poisson")
    with pytest.raises(TypeError, match="data is missing"):
        mj.glm("affairs ~ age", model="poisson")


def test_missing_formulaic_names_the_extra(fair, monkeypatch):
    monkeypatch.setitem(sys.modules, "formulaic", None)
    with pytest.raises(ImportError, match=r"mlejax\[formula\]"):
        mj.glm("affairs ~ age", data=fair, model="poisson")
