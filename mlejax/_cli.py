"""The ``mlejax`` command line: ``mlejax demo``, ``fit-dist``, ``glm``, ``mixture``,
``hmm`` (also ``python -m mlejax``).

Built on the standard library's ``argparse``: no dependency beyond mlejax's own,
and the help, sub-commands and exit codes users expect. CSV files are read with
the ``csv`` module (pandas is needed only by ``glm``, through formulaic). The
command line computes in float64 (it turns on ``jax_enable_x64`` when it runs;
importing mlejax never does).

Exit codes: 0 success; 2 bad input or usage (one line on stderr starting with
``mlejax: error:``, never a traceback). ``--json`` prints one JSON object on
stdout whose schema ``mlejax schema <command>`` prints (JSON Schema, draft 2020-12).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
import warnings

import numpy as np

EXIT_BAD_INPUT = 2
MISSING = {"", "na", "nan", "null", "none", "n/a", "."}
DEFAULT_DISTS = "normal,lognormal,gamma,weibull,exponential"


class CLIError(Exception):
    """Bad input: printed as one line and exit code 2."""


# -- CSV ---------------------------------------------------------------------------


def read_csv(path: str) -> dict[str, list[str]]:
    """The columns of a CSV file with a header row, as lists of strings."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        raise CLIError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise CLIError(f"{path}: cannot read it as CSV ({e})") from None
    rows = [r for r in rows if r]
    if len(rows) < 2:
        raise CLIError(f"{path}: needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise CLIError(f"{path}: line {i} has {len(r)} fields, the header has {len(header)}")
    return {h: [r[j].strip() for r in rows[1:]] for j, h in enumerate(header)}


def _column(table, name, path):
    if name not in table:
        raise CLIError(f"column {name!r} is not in {path}; its columns are: {', '.join(table)}")
    return table[name]


def numeric_column(table, name, path) -> np.ndarray:
    """A column as float64, missing cells (empty, NA, NaN) as NaN."""
    out = np.empty(len(_column(table, name, path)))
    for i, v in enumerate(table[name]):
        if v.lower() in MISSING:
            out[i] = np.nan
            continue
        try:
            out[i] = float(v)
        except ValueError:
            raise CLIError(f"column {name!r} in {path} is not numeric (row {i + 1}: {v!r})") from None
    if np.any(np.isinf(out)):
        raise CLIError(f"column {name!r} in {path} has infinite values")
    return out


def drop_missing(columns: dict, dropna: bool, path: str):
    """The columns without rows that have a missing value; (columns, n_dropped)."""
    bad = np.zeros(len(next(iter(columns.values()))), bool)
    for v in columns.values():
        bad |= np.isnan(v) if v.dtype.kind == "f" else np.array([str(s).lower() in MISSING for s in v])
    k = int(bad.sum())
    if k and not dropna:
        raise CLIError(
            f"{k} rows of {path} have missing values in {', '.join(columns)}; pass --dropna to drop them"
        )
    if k == len(bad):
        raise CLIError(f"every row of {path} has a missing value in {', '.join(columns)}")
    return {n: v[~bad] for n, v in columns.items()}, k


# -- output ------------------------------------------------------------------------


def _fmt(v) -> str:
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6g}"


def _json_number(v):
    return None if v is None or not math.isfinite(v) else v


def _clean(obj):
    """NaN/inf to null: the output is strict JSON."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float):
        return _json_number(obj)
    return obj


def _fit_record(res) -> dict:
    d = res.to_dict()
    keys = ("names", "params", "stderr", "loglik", "nobs", "nparams", "aic", "bic", "converged", "status", "message")
    return {k: d[k] for k in keys}


def _params_text(rec) -> str:
    return ", ".join(f"{n} = {_fmt(rec['params'][n])} ({_fmt(rec['stderr'][n])})" for n in rec["names"])


def _x64():
    import jax

    jax.config.update("jax_enable_x64", True)  # the command line is a program: float64 inference


# -- commands ----------------------------------------------------------------------


# the known names, without importing the families (``--help`` and bad input never import JAX);
# tests/test_cli.py checks them against mlejax.dist and mlejax.models._glm.MODELS
FAMILIES = {"normal": "Normal", "lognormal": "LogNormal", "gamma": "Gamma", "weibull": "Weibull",
            "exponential": "Exponential", "beta": "Beta", "studentt": "StudentT", "laplace": "Laplace",
            "poisson": "Poisson", "negbin": "NegativeBinomial", "geometric": "Geometric", "bernoulli": "Bernoulli"}
GLM_MODELS = ("linear", "logit", "binomial", "probit", "poisson", "negbin", "gamma")
GLM_ALIASES = {"gaussian": "linear", "binomial": "logit", "negativebinomial": "negbin"}


def _family(name):
    """The ``mlejax.dist`` family called ``name`` (a key of ``FAMILIES``), an instance."""
    from .dist import _families

    return getattr(_families, FAMILIES[name])()


def cmd_fit_dist(args) -> dict:
    names = [d.strip().lower() for d in args.dist.split(",") if d.strip()]
    unknown = [d for d in names if d not in FAMILIES]
    if unknown or not names:
        raise CLIError(f"unknown distribution {', '.join(unknown) or '(none)'}; known: {', '.join(FAMILIES)}")
    table = read_csv(args.file)
    cols, dropped = drop_missing({args.column: numeric_column(table, args.column, args.file)}, args.dropna, args.file)
    x = cols[args.column]
    _x64()
    from .dist import fit_dist

    fits, skipped, results = [], [], {}
    for name in dict.fromkeys(names):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = fit_dist(_family(name), x)
        except ValueError as e:  # data outside this family's support
            skipped.append({"dist": name, "reason": str(e).split(". ")[0]})
            continue
        results[name] = res
        fits.append({"dist": name, **_fit_record(res)})
    if not fits:
        raise CLIError(f"no distribution fits column {args.column!r}: " + "; ".join(
            f"{s['dist']}: {s['reason']}" for s in skipped))
    fits.sort(key=lambda r: (not r["converged"], r["aic"] if math.isfinite(r["aic"]) else math.inf))
    best_aic = fits[0]["aic"]
    for i, r in enumerate(fits, start=1):
        r["rank"], r["delta_aic"] = i, r["aic"] - best_aic
    out = {"command": "fit-dist", "file": args.file, "column": args.column, "nobs": int(x.size),
           "n_dropped": dropped, "best": fits[0]["dist"], "fits": fits, "skipped": skipped}
    if args.plot:
        from . import plot

        best = fits[0]["dist"]
        plot.save(plot.dist_diagnostics(results[best], x, _family(best), others={
            r["dist"]: (results[r["dist"]], _family(r["dist"])) for r in fits[1:]}), args.plot)
        out["plot"] = args.plot
    return out


def text_fit_dist(out) -> str:
    lines = [f"fit-dist: column {out['column']!r} of {out['file']}, n = {out['nobs']}"
             + (f" ({out['n_dropped']} rows with missing values dropped)" if out["n_dropped"] else ""),
             f"{'rank':>4}  {'dist':<12} {'loglik':>12} {'aic':>12} {'delta_aic':>10}  estimates (standard errors)"]
    for r in out["fits"]:
        flag = "" if r["converged"] else f"  [{r['status']}]"
        lines.append(f"{r['rank']:>4}  {r['dist']:<12} {_fmt(r['loglik']):>12} {_fmt(r['aic']):>12} "
                     f"{_fmt(r['delta_aic']):>10}  {_params_text(r)}{flag}")
    lines += [f"   -  {s['dist']:<12} skipped: {s['reason']}" for s in out["skipped"]]
    lines.append(f"best by AIC: {out['best']}" + (f"; plot written to {out['plot']}" if "plot" in out else ""))
    return "\n".join(lines)


def _glm_models():
    return {**{m: m for m in GLM_MODELS}, **GLM_ALIASES}


def _formula_columns(formula, table):
    """The columns a formula names (its identifiers that are column names)."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", formula))
    used = [c for c in table if c in words]
    if not used:
        raise CLIError(f"--formula {formula!r} names no column of the file; its columns are: {', '.join(table)}")
    return used


def _typed(table, name, path):
    """A column as float64 if every present cell is a number, else as strings (a factor)."""
    try:
        return numeric_column(table, name, path)
    except CLIError:
        return np.array(table[name], dtype=object)


def cmd_glm(args) -> dict:
    models = _glm_models()
    family = args.family.lower()
    if family not in models:
        raise CLIError(f"unknown family {args.family!r}; known: {', '.join(models)}")
    if "~" not in args.formula:
        raise CLIError(f"--formula {args.formula!r} needs a response and terms, e.g. 'y ~ x1 + C(g)'")
    table = read_csv(args.file)
    used = _formula_columns(args.formula, table)
    lhs = args.formula.split("~")[0]
    cols = {c: _typed(table, c, args.file) for c in used}
    for c in used:
        if re.search(rf"\b{re.escape(c)}\b", lhs) and cols[c].dtype == object:
            raise CLIError(f"column {c!r} in {args.file} is the response but is not numeric")
    cols, dropped = drop_missing(cols, args.dropna, args.file)
    try:
        import pandas as pd

        from .models._formula import _formulaic

        _formulaic()
    except ImportError:
        raise CLIError('glm needs formulas: pip install "mlejax[formula]" (formulaic, pandas)') from None
    _x64()
    from .models._glm import glm

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = glm(args.formula, data=pd.DataFrame(cols), model=models[family])
    except ValueError as e:
        raise CLIError(str(e).splitlines()[0]) from None
    return {"command": "glm", "file": args.file, "formula": args.formula, "family": models[family],
            "n_dropped": dropped, **_fit_record(res), "summary": res.summary()}


def text_glm(out) -> str:
    head = f"glm: {out['formula']} ({out['family']}) on {out['file']}"
    if out["n_dropped"]:
        head += f" ({out['n_dropped']} rows with missing values dropped)"
    return head + "\n" + out["summary"]


def _k_range(spec: str) -> list[int]:
    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+))?\s*", spec)
    if not m or int(m.group(1)) < 1 or (m.group(2) and int(m.group(2)) < int(m.group(1))):
        raise CLIError(f"--k {spec!r} must be a number or a range such as 1-6 (at least 1)")
    lo = int(m.group(1))
    return list(range(lo, int(m.group(2) or lo) + 1))


COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")


def _counts_and_matrix(args, spec, flag, what):
    """The K range, the columns and the (n, d) data of ``mixture``/``hmm``, validated."""
    ks = _k_range(spec)
    if args.covariance_type not in COVARIANCE_TYPES:
        raise CLIError(f"unknown --covariance-type {args.covariance_type!r}; known: {', '.join(COVARIANCE_TYPES)}")
    names = [c.strip() for c in args.columns.split(",") if c.strip()]
    table = read_csv(args.file)
    cols, dropped = drop_missing({c: numeric_column(table, c, args.file) for c in names}, args.dropna, args.file)
    x = np.column_stack([cols[c] for c in names])
    if max(ks) > x.shape[0]:
        raise CLIError(f"{flag} {spec}: more {what} than the {x.shape[0]} observations")
    return ks, names, x, dropped


def _ic_rows(ks, results):
    return [{"k": int(k), "loglik": float(r.loglik), "nparams": int(r.nparams), "aic": float(r.aic),
             "bic": float(r.bic), "converged": bool(r.converged)} for k, r in zip(ks, results)]


def cmd_mixture(args) -> dict:
    ks, names, x, dropped = _counts_and_matrix(args, args.k, "--k", "components")
    _x64()
    import jax

    from .mixture._gmm import GaussianMixture
    from .mixture._select import select_components

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sel = select_components(GaussianMixture(1, args.covariance_type), x, ks, key=jax.random.key(args.seed),
                                n_init=args.n_init)
    best = sel.best_result
    table_rows = _ic_rows(sel.n_components, sel.results)
    params = {k: np.asarray(v).tolist() for k, v in best.params.items()}
    return {"command": "mixture", "file": args.file, "columns": names, "nobs": int(x.shape[0]), "n_dropped": dropped,
            "covariance_type": args.covariance_type, "criterion": "bic", "best_k": int(sel.best), "table": table_rows,
            "best": {"params": params, "loglik": float(best.loglik), "converged": bool(best.converged)}}


def _ic_lines(out) -> list:
    """The information-criterion table of ``mixture``/``hmm``, the chosen K marked."""
    lines = [f"{'K':>4} {'loglik':>14} {'nparams':>8} {'aic':>14} {'bic':>14}"]
    for r in out["table"]:
        mark = "  <- best" if r["k"] == out["best_k"] else ""
        lines.append(f"{r['k']:>4} {_fmt(r['loglik']):>14} {r['nparams']:>8} {_fmt(r['aic']):>14} "
                     f"{_fmt(r['bic']):>14}{mark}")
    return lines


def text_mixture(out) -> str:
    lines = [f"mixture: Gaussian ({out['covariance_type']}) on {', '.join(out['columns'])} of {out['file']}, "
             f"n = {out['nobs']}" + (f" ({out['n_dropped']} rows dropped)" if out["n_dropped"] else "")]
    lines += _ic_lines(out)
    p = out["best"]["params"]
    lines.append(f"chosen by BIC: {out['best_k']} components")
    for i, (w, m) in enumerate(zip(p["weights"], p["means"])):
        lines.append(f"  component {i}: weight {_fmt(w)}, mean [{', '.join(_fmt(v) for v in m)}]")
    return "\n".join(lines)


HMM_EMISSIONS = ("gaussian", "poisson", "categorical")


def _hmm_series(args, x, names):
    """The observations an ``--emission`` takes: (n, d) for Gaussian, one column of
    counts (Poisson) or of category codes 0, 1, 2, ... (categorical)."""
    if args.emission == "gaussian":
        return x
    if x.shape[1] != 1:
        raise CLIError(f"--emission {args.emission} takes one column; got {len(names)} ({', '.join(names)})")
    v = x[:, 0]
    if np.any(v < 0) or np.any(v != np.round(v)):
        what = "non-negative integer counts" if args.emission == "poisson" else "category codes 0, 1, 2, ..."
        raise CLIError(f"--emission {args.emission} needs {what} in column {names[0]!r}")
    return v


def _hmm_model(args, k, x):
    from .dist import Categorical, Poisson
    from .hmm import HMM, GaussianHMM

    if args.emission == "gaussian":
        return GaussianHMM(k, args.covariance_type)
    return HMM(Poisson() if args.emission == "poisson" else Categorical(int(np.max(x)) + 1), k)


def cmd_hmm(args) -> dict:
    """HMMs with each number of states on one series (rows in time order), chosen by
    BIC; the chosen one with its standard errors."""
    if args.emission not in HMM_EMISSIONS:
        raise CLIError(f"unknown --emission {args.emission!r}; known: {', '.join(HMM_EMISSIONS)}")
    ks, names, x, dropped = _counts_and_matrix(args, args.states, "--states", "states")
    x = _hmm_series(args, x, names)
    _x64()
    import jax

    from .mixture._em import em

    def fit(k, stderr):
        return em(_hmm_model(args, k, x), x, key=jax.random.key(args.seed), n_init=args.n_init, stderr=stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = [fit(k, False) for k in ks]
        rows = _ic_rows(ks, fits)
        i = int(np.nanargmin([r["bic"] for r in rows]))
        best = fit(ks[i], True)  # the same fit again (same key), now with its standard errors
    states = np.asarray(best.decode(x)).astype(int)
    params = {k: np.asarray(v).tolist() for k, v in best.params.items()}
    stderr = {k: np.asarray(v).tolist() for k, v in best.stderr.items()}
    return {"command": "hmm", "file": args.file, "columns": names, "nobs": int(x.shape[0]), "n_dropped": dropped,
            "emission": args.emission, "covariance_type": args.covariance_type, "criterion": "bic", "best_k": ks[i],
            "table": rows, "best": {"params": params, "stderr": stderr, "loglik": float(best.loglik),
                                    "converged": bool(best.converged), "states": states.tolist()}}


def text_hmm(out) -> str:
    what = "Gaussian (" + out["covariance_type"] + ")" if out["emission"] == "gaussian" else out["emission"]
    lines = [f"hmm: {what} emissions on {', '.join(out['columns'])} of {out['file']}, n = {out['nobs']}"
             + (f" ({out['n_dropped']} rows dropped)" if out["n_dropped"] else "")] + _ic_lines(out)
    lines.append(f"chosen by BIC: {out['best_k']} states")
    lines.append(f"  {'parameter':<22} {'estimate':>12} {'stderr':>12}")
    best = out["best"]
    for name, value in best["params"].items():
        v, se = np.asarray(value, float), np.asarray([np.nan if e is None else e for e in np.ravel(best["stderr"][name])])
        for j, idx in enumerate(np.ndindex(v.shape)):
            label = f"{name}[{', '.join(map(str, idx))}]" if idx else name
            lines.append(f"  {label:<22} {_fmt(float(v[idx])):>12} {_fmt(float(se[j])):>12}")
    counts = np.bincount(best["states"], minlength=out["best_k"])
    lines.append("Viterbi path: " + ", ".join(f"state {k} x {c}" for k, c in enumerate(counts)))
    return "\n".join(lines)


def cmd_demo(args) -> dict:
    """The textbook cases on built-in data, each next to its closed form."""
    _x64()
    from . import dist
    from .datasets import challenger
    from .models._glm import glm

    rng = np.random.default_rng(2026)
    cases = []

    def add(case, res, name, closed, closed_se):
        d = res.to_dict()
        cases.append({"case": case, "param": name, "estimate": d["params"][name], "stderr": d["stderr"][name],
                      "closed_form": float(closed), "closed_form_stderr": float(closed_se)})

    coin = np.array([1.0, 0, 1, 1, 0])
    add("coin: 3 heads in 5 flips", dist.fit_dist(dist.Bernoulli(), coin), "p", 0.6, math.sqrt(0.24 / 5))
    x = rng.normal(10.0, 2.0, 200)
    add("normal, n = 200", dist.fit_dist(dist.Normal(), x), "sigma", x.std(), x.std() / math.sqrt(2 * x.size))
    k = rng.poisson(3.2, 150).astype(float)
    add("poisson counts, n = 150", dist.fit_dist(dist.Poisson(), k), "rate", k.mean(), math.sqrt(k.mean() / k.size))
    t = rng.exponential(1 / 0.7, 120)
    add("exponential waits, n = 120", dist.fit_dist(dist.Exponential(), t), "rate", 1 / t.mean(),
        1 / t.mean() / math.sqrt(t.size))
    c = challenger()
    res = glm(c["failure"], np.column_stack([np.ones(23), c["temperature"]]), "logit")
    add("Challenger O-rings: logit slope", res, "beta[1]", -0.23216274, 0.10823652)  # statsmodels Logit
    return {"command": "demo", "cases": cases}


def text_demo(out) -> str:
    lines = [f"{'case':<34} {'param':<8} {'estimate':>11} {'stderr':>10}   closed form (stderr)"]
    for c in out["cases"]:
        lines.append(f"{c['case']:<34} {c['param']:<8} {_fmt(c['estimate']):>11} {_fmt(c['stderr']):>10}   "
                     f"{_fmt(c['closed_form'])} ({_fmt(c['closed_form_stderr'])})")
    return "\n".join(lines)


# -- JSON schemas (documented output of --json) ---------------------------------------

_NUM = {"type": ["number", "null"]}
_STR, _INT, _BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
_NUMMAP = {"type": "object", "additionalProperties": _NUM}
_ARR = {"type": "array"}
_FIT = {"names": {"type": "array", "items": _STR}, "params": _NUMMAP, "stderr": _NUMMAP, "loglik": _NUM,
        "nobs": _INT, "nparams": _INT, "aic": _NUM, "bic": _NUM, "converged": _BOOL, "status": _STR, "message": _STR}


def _obj(props, required=None):
    return {"type": "object", "properties": props, "required": list(required or props)}


# startprob, transmat and the emission's parameters (gaussian: means, covariances; poisson: rate;
# categorical: p, the first k - 1 category probabilities), nested lists; stderr the same (null: none)
_HMM_PARAMS = {**_obj({"startprob": _ARR, "transmat": _ARR}), "additionalProperties": _ARR}


SCHEMAS = {
    "demo": _obj({"command": {"const": "demo"}, "cases": {"type": "array", "items": _obj({
        "case": _STR, "param": _STR, "estimate": _NUM, "stderr": _NUM, "closed_form": _NUM,
        "closed_form_stderr": _NUM})}}),
    "fit-dist": _obj({
        "command": {"const": "fit-dist"}, "file": _STR, "column": _STR, "nobs": _INT, "n_dropped": _INT,
        "best": _STR, "fits": {"type": "array", "items": _obj({"dist": _STR, "rank": _INT, "delta_aic": _NUM, **_FIT})},
        "skipped": {"type": "array", "items": _obj({"dist": _STR, "reason": _STR})}, "plot": _STR},
        required=["command", "file", "column", "nobs", "n_dropped", "best", "fits", "skipped"]),
    "glm": _obj({"command": {"const": "glm"}, "file": _STR, "formula": _STR, "family": _STR, "n_dropped": _INT,
                 **_FIT, "summary": _STR}),
    "mixture": _obj({
        "command": {"const": "mixture"}, "file": _STR, "columns": {"type": "array", "items": _STR}, "nobs": _INT,
        "n_dropped": _INT, "covariance_type": _STR, "criterion": _STR, "best_k": _INT,
        "table": {"type": "array", "items": _obj({"k": _INT, "loglik": _NUM, "nparams": _INT, "aic": _NUM,
                                                  "bic": _NUM, "converged": _BOOL})},
        "best": _obj({"params": _obj({"weights": {"type": "array"}, "means": {"type": "array"},
                                      "covariances": {"type": "array"}}), "loglik": _NUM, "converged": _BOOL})}),
    "hmm": _obj({
        "command": {"const": "hmm"}, "file": _STR, "columns": {"type": "array", "items": _STR}, "nobs": _INT,
        "n_dropped": _INT, "covariance_type": _STR, "criterion": _STR, "best_k": _INT,
        "table": {"type": "array", "items": _obj({"k": _INT, "loglik": _NUM, "nparams": _INT, "aic": _NUM,
                                                  "bic": _NUM, "converged": _BOOL})},
        "emission": {"enum": list(HMM_EMISSIONS)},
        "best": _obj({"params": _HMM_PARAMS, "stderr": _HMM_PARAMS, "loglik": _NUM, "converged": _BOOL,
                      "states": {"type": "array", "items": _INT}})}),
}
for _s in SCHEMAS.values():
    _s["$schema"] = "https://json-schema.org/draft/2020-12/schema"


# -- argparse ------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2 (argparse's usage block is noise here)
        raise CLIError(f"{message} (see: {self.prog} --help)")


COMMANDS = {"demo": (cmd_demo, text_demo), "fit-dist": (cmd_fit_dist, text_fit_dist), "glm": (cmd_glm, text_glm),
            "mixture": (cmd_mixture, text_mixture), "hmm": (cmd_hmm, text_hmm)}


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mlejax", description="Maximum likelihood on JAX from the shell.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add(name, help_, file=True):
        s = sub.add_parser(name, help=help_, description=help_)
        if file:
            s.add_argument("file", help="a CSV file with a header row")
            s.add_argument("--dropna", action="store_true", help="drop rows with missing values (else an error)")
        s.add_argument("--json", action="store_true", help=f"print JSON (schema: mlejax schema {name})")
        return s

    add("demo", "textbook fits on built-in data, next to their closed forms", file=False)
    s = add("fit-dist", "fit distributions to a column, ranked by AIC")
    s.add_argument("--column", required=True, help="the column to fit")
    s.add_argument("--dist", default=DEFAULT_DISTS, help=f"comma-separated families (default {DEFAULT_DISTS})")
    s.add_argument("--plot", metavar="PNG", help="write diagnostics of the best fit (needs matplotlib)")
    s = add("glm", "a generalised linear model from a formula (needs formulaic)")
    s.add_argument("--formula", required=True, help='e.g. "y ~ x1 + np.log(x2) + C(g)"')
    s.add_argument("--family", default="linear", help="linear, logit, probit, poisson, negbin, gamma")
    for name, help_, flag, default, rows in (
        ("mixture", "Gaussian mixtures with 1..K components, chosen by BIC", "--k", "1-6", "the dimensions"),
        ("hmm", "hidden Markov models with 1..K states on one series, chosen by BIC", "--states", "1-4",
         "rows in time order"),
    ):
        s = add(name, help_)
        s.add_argument("--columns", required=True, help=f"comma-separated columns ({rows})")
        s.add_argument(flag, default=default, help=f"how many: 3 or a range {default}")
        s.add_argument("--covariance-type", default="full", help="full, diag, spherical or tied (Gaussian)")
        if name == "hmm":
            s.add_argument("--emission", default="gaussian", help=f"{', '.join(HMM_EMISSIONS)} (default gaussian)")
        s.add_argument("--n-init", type=int, default=3, help="k-means restarts per K")
        s.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("schema", help="print the JSON Schema of a command's --json output")
    s.add_argument("name", choices=sorted(SCHEMAS))
    return p


def main(argv=None) -> int:
    """Run the command line; returns the exit code (0, or 2 for bad input)."""
    try:
        args = build_parser().parse_args(argv)
        if args.command == "schema":
            print(json.dumps(SCHEMAS[args.name], indent=2))
            return 0
        run, text = COMMANDS[args.command]
        out = run(args)
    except CLIError as e:
        print(f"mlejax: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ImportError as e:  # an optional extra a command needs
        print(f"mlejax: error: {str(e).splitlines()[0]}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(_clean(out), indent=2) if args.json else text(out))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
