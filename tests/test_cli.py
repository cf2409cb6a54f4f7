"""The ``mlejax`` command line on CSV files written here: the numbers against
mj.fit_dist / scipy / statsmodels, the JSON against its schema, bad input as one line
with exit code 2. Commands run in this process (``main(argv)``, output captured: no
interpreter start and no JAX import per command); the installed console script runs as
a subprocess in ``test_demo_equals_closed_forms`` and the JAX-free error path in
``test_help_and_bad_input_never_import_jax``."""

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import jax
import numpy as np
import pytest
from scipy import stats

import mlejax as mj
from mlejax._cli import SCHEMAS, main, text_hmm

ROOT = Path(__file__).resolve().parents[1]


def _entry_point():
    """The installed console script (pip install -e . puts it beside the interpreter);
    ``python -m mlejax`` where the package is used from a source tree without one."""
    script = shutil.which("mlejax", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "mlejax"]


def run(*args, ok=True, fresh=False):
    """The command line on ``args``: ``main(argv)`` here, or (``fresh``) the installed
    command in a new interpreter. Returns ``returncode``, ``stdout`` and ``stderr``."""
    argv = list(map(str, args))
    if fresh:
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        p = subprocess.run([*_entry_point(), *argv], capture_output=True, text=True, timeout=600, env=env)
    else:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as e:  # argparse: --help, usage errors
                code = e.code
        p = SimpleNamespace(returncode=code or 0, stdout=out.getvalue(), stderr=err.getvalue())
    if ok:
        assert p.returncode == 0, p.stderr
    return p


def validate(obj, schema, path="$"):
    """A small JSON Schema check (type, const, properties, required, items,
    additionalProperties): the subset the command line's schemas use."""
    types = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
             "integer": int, "number": (int, float)}
    if "const" in schema:
        assert obj == schema["const"], path
    if "enum" in schema:
        assert obj in schema["enum"], path
    if "type" in schema:
        allowed = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        ok = any(isinstance(obj, types[t]) and not (t in ("integer", "number") and isinstance(obj, bool))
                 for t in allowed)
        assert ok, f"{path}: {obj!r} is not {allowed}"
    if isinstance(obj, dict):
        for k in schema.get("required", []):
            assert k in obj, f"{path}: missing {k}"
        for k, v in obj.items():
            sub = schema.get("properties", {}).get(k, schema.get("additionalProperties"))
            if isinstance(sub, dict):
                validate(v, sub, f"{path}.{k}")
    if isinstance(obj, list) and "items" in schema:
        for i, v in enumerate(obj):
            validate(v, schema["items"], f"{path}[{i}]")


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory):
    rng = np.random.default_rng(7)
    n = 400
    x = rng.gamma(2.5, 1 / 1.5, n)
    x1, g = rng.normal(size=n), rng.choice(["a", "b", "c"], n)
    y = rng.poisson(np.exp(0.3 + 0.5 * x1 + 0.4 * (g == "b")))
    a = np.r_[rng.normal(0, 1, n // 2), rng.normal(6, 1, n // 2)]
    b = np.r_[rng.normal(0, 1, n // 2), rng.normal(4, 0.5, n // 2)]
    path = tmp_path_factory.mktemp("cli") / "data.csv"
    cols = [v.tolist() for v in (x, x1, g, y, a, b)]
    rows = [",".join(map(str, r)) + f",id{i}" for i, r in enumerate(zip(*cols))]  # repr: exact floats
    rows[5] = "," + rows[5].split(",", 1)[1]  # two missing values in column x
    rows[9] = "NA," + rows[9].split(",", 1)[1]
    path.write_text("x,x1,g,y,a,b,name\n" + "\n".join(rows) + "\n")
    keep = np.ones(n, bool)
    keep[[5, 9]] = False
    return path, dict(x=x[keep], x1=x1, g=g, y=y, a=a, b=b)


def test_fit_dist_numbers_json_and_plot(csv_file, tmp_path):
    path, d = csv_file
    png = tmp_path / "fit.png"
    p = run("fit-dist", path, "--column", "x", "--dist", "gamma,weibull,lognormal,poisson", "--dropna",
            "--json", "--plot", png)
    out = json.loads(p.stdout)
    validate(out, SCHEMAS["fit-dist"])
    assert out["nobs"] == d["x"].size and out["n_dropped"] == 2
    assert [s["dist"] for s in out["skipped"]] == ["poisson"]  # not integers
    aics = [f["aic"] for f in out["fits"]]
    assert aics == sorted(aics) and out["best"] == "gamma"
    fits = {f["dist"]: f for f in out["fits"]}
    ref = mj.fit_dist(mj.dist.Gamma(), d["x"])
    for name in ref.names:
        assert fits["gamma"]["params"][name] == pytest.approx(float(ref.params[name]), rel=1e-10)
        assert fits["gamma"]["stderr"][name] == pytest.approx(float(ref.stderr[name]), rel=1e-8)
    shape, _, scale = stats.gamma.fit(d["x"], floc=0)
    assert fits["gamma"]["params"]["shape"] == pytest.approx(shape, rel=1e-5)
    assert fits["gamma"]["params"]["rate"] == pytest.approx(1 / scale, rel=1e-5)
    c, _, s = stats.weibull_min.fit(d["x"], floc=0)
    assert fits["weibull"]["params"]["shape"] == pytest.approx(c, rel=1e-5)
    assert fits["weibull"]["loglik"] == pytest.approx(stats.weibull_min.logpdf(d["x"], c, 0, s).sum(), rel=1e-8)
    assert fits["lognormal"]["params"]["mu"] == pytest.approx(np.log(d["x"]).mean(), rel=1e-10)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_glm_formula_matches_statsmodels_and_text_table(csv_file):
    smf = pytest.importorskip("statsmodels.formula.api")
    pd = pytest.importorskip("pandas")
    path, d = csv_file
    out = json.loads(run("glm", path, "--formula", "y ~ x1 + C(g)", "--family", "poisson", "--json").stdout)
    validate(out, SCHEMAS["glm"])
    ref = smf.poisson("y ~ x1 + C(g)", pd.DataFrame({k: d[k] for k in ("y", "x1", "g")})).fit(disp=0, tol=1e-12)
    assert set(out["names"]) == set(ref.params.index)
    for name in ref.params.index:
        assert out["params"][name] == pytest.approx(ref.params[name], rel=1e-8)
        assert out["stderr"][name] == pytest.approx(ref.bse[name], rel=1e-8)
    text = run("glm", path, "--formula", "y ~ x1 + C(g)", "--family", "poisson").stdout
    assert "C(g)[T.b]" in text and "Log-likelihood" in text


def test_mixture_chooses_two_components(csv_file):
    path, d = csv_file
    out = json.loads(run("mixture", path, "--columns", "a,b", "--k", "1-3", "--json").stdout)
    validate(out, SCHEMAS["mixture"])
    assert [r["k"] for r in out["table"]] == [1, 2, 3] and out["best_k"] == 2
    bics = {r["k"]: r["bic"] for r in out["table"]}
    assert bics[2] == min(bics.values())
    # the reported log-likelihood is that of the reported parameters (scipy oracle)
    p, x = out["best"]["params"], np.column_stack([d["a"], d["b"]])
    dens = sum(w * stats.multivariate_normal(m, c).pdf(x) for w, m, c in zip(p["weights"], p["means"], p["covariances"]))
    assert out["best"]["loglik"] == pytest.approx(np.log(dens).sum(), rel=1e-10)
    assert sorted(np.round(np.asarray(p["means"])[:, 0])) == [0.0, 6.0]


def test_demo_equals_closed_forms():
    out = json.loads(run("demo", "--json", fresh=True).stdout)  # the installed command, end to end
    validate(out, SCHEMAS["demo"])
    assert len(out["cases"]) == 5
    for c in out["cases"]:
        assert c["estimate"] == pytest.approx(c["closed_form"], rel=1e-6), c["case"]
        assert c["stderr"] == pytest.approx(c["closed_form_stderr"], rel=1e-5), c["case"]


def test_schema_command_prints_the_schema():
    assert json.loads(run("schema", "fit-dist").stdout) == json.loads(json.dumps(SCHEMAS["fit-dist"]))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    t = tmp_path_factory.mktemp("bad")
    (t / "words.csv").write_text("x,y\n1.0,a\n2.0,b\nthree,c\n")
    (t / "nan.csv").write_text("x,y\n1.0,2\nnan,3\n2.5,\n3.5,4\n")
    (t / "ragged.csv").write_text("x,y\n1,2\n3\n")
    (t / "empty.csv").write_text("")
    return t


BAD = [
    (["fit-dist", "{t}/missing.csv", "--column", "x"], "no such file"),
    (["fit-dist", "{t}/words.csv", "--column", "z"], "column 'z' is not in .* its columns are: x, y"),
    (["fit-dist", "{t}/words.csv", "--column", "x"], "column 'x' .* is not numeric \\(row 3: 'three'\\)"),
    (["fit-dist", "{t}/nan.csv", "--column", "x"], "1 rows .* missing values in x; pass --dropna"),
    (["mixture", "{t}/nan.csv", "--columns", "x,y"], "2 rows .* missing values in x, y; pass --dropna"),
    (["fit-dist", "{t}/nan.csv", "--column", "x", "--dist", "gamma,frechet"], "unknown distribution frechet; known: normal"),
    (["glm", "{t}/nan.csv", "--formula", "y ~ x", "--family", "tweedie"], "unknown family 'tweedie'; known: linear, logit"),
    (["glm", "{t}/words.csv", "--formula", "y ~ x", "--dropna"], "'y' .* is the response but is not numeric"),
    (["mixture", "{t}/nan.csv", "--columns", "x", "--k", "3-1"], "--k '3-1' must be"),
    (["fit-dist", "{t}/ragged.csv", "--column", "x"], "line 3 has 1 fields"),
    (["fit-dist", "{t}/empty.csv", "--column", "x"], "needs a header row"),
    (["fit-dist", "{t}/nan.csv"], "the following arguments are required: --column"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[f"{a[0]}-{i}" for i, (a, _) in enumerate(BAD)])
def test_bad_input_is_one_line_and_exit_2(bad_files, args, message):
    import re

    p = run(*[a.format(t=bad_files) for a in args], ok=False)
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlejax: error: "), p.stderr
    assert re.search(message, lines[0]), lines[0]


def test_help_and_bad_input_never_import_jax(bad_files):
    """``mlejax --help`` and every bad-input error above are answered without importing
    JAX (start-up in about a second, not several): checked in a fresh interpreter."""
    argvs = [["--help"], ["fit-dist", "--help"]] + [[a.format(t=bad_files) for a in args] for args, _ in BAD]
    code = (
        "import contextlib, io, sys\n"
        "from mlejax._cli import main\n"
        f"for argv in {argvs!r}:\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "        try:\n"
        "            code = main(argv)\n"
        "        except SystemExit as e:\n"
        "            code = e.code\n"
        "    assert code == (0 if '--help' in argv else 2), (argv, code)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib', 'optax')))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]", p.stdout


def test_cli_name_lists_are_the_library_s():
    """The command line's family and GLM names (kept as plain strings so bad input is
    answered without importing JAX) are exactly the library's."""
    from mlejax._cli import FAMILIES, GLM_MODELS, _glm_models
    from mlejax.dist import Family, _families
    from mlejax.models._glm import MODELS

    assert all(issubclass(getattr(_families, c), Family) for c in FAMILIES.values())
    assert set(GLM_MODELS) == set(MODELS) and set(_glm_models().values()) <= set(MODELS)


def test_dropna_fits_the_rest(bad_files):
    out = json.loads(run("fit-dist", bad_files / "nan.csv", "--column", "x", "--dist", "normal", "--dropna",
                         "--json").stdout)
    assert out["nobs"] == 3 and out["n_dropped"] == 1
    x = np.array([1.0, 2.5, 3.5])
    assert out["fits"][0]["params"]["mu"] == pytest.approx(x.mean()) and out["fits"][0]["params"]["sigma"] == (
        pytest.approx(x.std()))


def test_entry_point_is_declared():
    """pyproject's [project.scripts] names mlejax._cli:main (what `pip install` turns
    into the `mlejax` command; test_demo_equals_closed_forms runs that command)."""
    tomllib = pytest.importorskip("tomllib")
    import importlib

    from mlejax._cli import main

    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["mlejax"]
    module, func = target.split(":")
    assert getattr(importlib.import_module(module), func) is main


def test_hmm_command_matches_hmmlearn_score(tmp_path):
    hmmlearn = pytest.importorskip("hmmlearn.hmm")
    rng = np.random.default_rng(4)
    s = np.repeat([0, 1, 0, 1, 0, 1], 40)
    x = np.where(s == 0, rng.normal(0, 1, s.size), rng.normal(4, 1, s.size))
    path = tmp_path / "series.csv"
    path.write_text("v\n" + "\n".join(map(str, x.tolist())) + "\n")
    out = json.loads(run("hmm", path, "--columns", "v", "--states", "1-3", "--json").stdout)
    validate(out, SCHEMAS["hmm"])
    assert out["best_k"] == 2 and [r["k"] for r in out["table"]] == [1, 2, 3]
    p = out["best"]["params"]
    ref = hmmlearn.GaussianHMM(2, covariance_type="full", init_params="", params="")
    ref.startprob_, ref.transmat_ = np.array(p["startprob"]), np.array(p["transmat"])
    ref.means_, ref.covars_ = np.array(p["means"]), np.array(p["covariances"])
    assert out["best"]["loglik"] == pytest.approx(ref.score(x[:, None]), rel=1e-9)
    assert np.array_equal(out["best"]["states"], ref.predict(x[:, None]))


def test_hmm_command_poisson_emission_with_standard_errors(tmp_path):
    hmmlearn = pytest.importorskip("hmmlearn.hmm")
    rng = np.random.default_rng(6)
    s = np.repeat([0, 1, 0, 1, 0, 1], 30)
    x = rng.poisson(np.where(s == 0, 2.0, 9.0)).astype(float)
    path = tmp_path / "counts.csv"
    path.write_text("n,m\n" + "\n".join(f"{v:g},{v + 0.5:g}" for v in x) + "\n")
    out = json.loads(run("hmm", path, "--columns", "n", "--states", "2", "--emission", "poisson", "--json").stdout)
    validate(out, SCHEMAS["hmm"])
    p, se = out["best"]["params"], out["best"]["stderr"]
    ref = hmmlearn.PoissonHMM(2, init_params="", params="")
    ref.startprob_, ref.transmat_, ref.lambdas_ = np.array(p["startprob"]), np.array(p["transmat"]), np.c_[p["rate"]]
    assert out["best"]["loglik"] == pytest.approx(ref.score(x.astype(int)[:, None]), rel=1e-9)
    lib = mj.em(mj.HMM(mj.dist.Poisson(), 2), x, n_init=3, key=jax.random.key(0))
    np.testing.assert_allclose(se["rate"], lib.stderr["rate"], rtol=1e-6)
    assert np.all(np.asarray(se["rate"]) > 0)
    text = text_hmm(out)  # the text output is made from the same dictionary
    assert "rate[1]" in text and "transmat[0, 1]" in text and "stderr" in text
    for args, msg in ((["--emission", "bernoulli"], "unknown --emission 'bernoulli'; known: gaussian, poisson"),
                      (["--emission", "categorical", "--columns", "n,m"], "takes one column"),
                      (["--emission", "poisson", "--columns", "m"], "non-negative integer counts in column 'm'")):
        cols = [] if "--columns" in args else ["--columns", "n"]
        p = run("hmm", path, *cols, *args, ok=False)
        assert p.returncode == 2 and p.stderr.count("\n") == 1 and msg in p.stderr, p.stderr
