"""Text and HTML summaries of a :class:`FitResult` (host-side, statsmodels-like)."""

from __future__ import annotations

import html
import textwrap

import jax
import numpy as np

from ._inference import normal_cdf, normal_quantile
from ._status import Status

_WIDTH = 78

_FLAG_WORDS = {
    "hessian_not_negdef": "Hessian not negative definite",
    "not_identified": "not identified",
    "ill_conditioned": "ill-conditioned",
    "at_bound": "parameter at a bound",
    "not_smooth": "not smooth",
}


def _level_labels(level):
    a = 100.0 * (1.0 - level) / 2.0
    fmt = lambda v: f"{v:.3f}".rstrip("0").rstrip(".")  # noqa: E731
    return f"[{fmt(a / 100.0)}", f"{fmt(1.0 - a / 100.0)}]"


def display_order(res) -> tuple:
    """Indices of ``res.names`` in the user's order (dict insertion order)."""
    spec = getattr(res, "_spec", None)
    return spec.display_order if spec is not None else tuple(range(len(res.names)))


def stderr_flat(res) -> np.ndarray:
    """Standard errors over ``names`` (numpy): from ``cov``, or from ``stderr`` where no
    dense covariance was formed (NaN where there are none)."""
    if res.cov is not None:
        var = np.diag(np.asarray(res.cov, dtype=float)) if len(res.names) else np.zeros(0)
        return np.where(np.isfinite(var) & (var >= 0), np.sqrt(np.abs(var)), np.nan)
    if res.stderr is None:
        return np.full(len(res.names), np.nan)
    return np.asarray(res._spec.natural_flat(_host(res.stderr), np), dtype=float)


def _host(tree):
    """A pytree's leaves as numpy arrays (summaries are host work: nothing compiles)."""
    return jax.tree_util.tree_map(np.asarray, tree)


def coef_table(res, level=0.95):
    """Rows ``(name, coef, std err, z, P>|z|, low, high)`` (Wald, at ``level``) and the
    two interval column labels."""
    phi = np.asarray(res._spec.natural_flat(_host(res.params), np), dtype=float)
    se = stderr_flat(res)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = phi / se
    p = np.where(np.isfinite(z), 2.0 * normal_cdf(-np.abs(z)), np.nan)  # two-sided; NaN where z is not finite
    q = normal_quantile(0.5 + level / 2.0)
    rows = [
        (res.names[i], phi[i], se[i], z[i], p[i], phi[i] - q * se[i], phi[i] + q * se[i])
        for i in display_order(res)
    ]
    lo, hi = _level_labels(level)
    return rows, lo, hi


def _fmt(x, width=10):
    if x is None or not np.isfinite(x):
        return f"{'nan':>{width}}"
    ax = abs(x)
    if ax != 0 and (ax >= 1e5 or ax < 1e-4):
        return f"{x:>{width}.3e}"
    return f"{x:>{width}.4f}"


def flag_words(res) -> str:
    """The raised diagnostic flags in words, or ``"none"``."""
    on = [
        _FLAG_WORDS["hessian_not_negdef"] if bool(res.hessian_not_negdef) else None,
        _FLAG_WORDS["not_identified"] if bool(res.not_identified) else None,
        _FLAG_WORDS["ill_conditioned"] if bool(res.ill_conditioned) else None,
        _FLAG_WORDS["at_bound"] if bool(res.at_bound) else None,
        _FLAG_WORDS["not_smooth"] if getattr(res, "rough_params", ()) else None,
    ]
    on = [w for w in on if w]
    return ", ".join(on) if on else "none"


def checked_or_none(get):
    """``get()``, or None where it is refused (e.g. BIC with unverified observations)."""
    try:
        return get()
    except ValueError:
        return None


def _header_pairs(res):
    nobs = "-" if res.nobs is None else str(res.nobs)
    bic = checked_or_none(lambda: float(res.bic))
    bic = "n/a: give nobs=" if bic is None else f"{bic:.6g}"
    return [
        ("Method:", res.method, "Log-likelihood:", f"{float(res.loglik):.6g}"),
        ("Converged:", str(bool(res.converged)), "AIC:", f"{float(res.aic):.6g}"),
        ("Iterations:", str(int(res.n_iter)), "BIC:", bic),
        ("No. observations:", nobs, "Covariance:", res.cov_type or "none"),
    ]


def summary_text(res, level=0.95) -> str:
    lines = ["mlejax maximum-likelihood fit".center(_WIDTH).rstrip(), "=" * _WIDTH]
    for a, b, c, d in _header_pairs(res):
        lines.append(f"{a:<18}{b:>20}   {c:<18}{d:>19}")
    lines.append("=" * _WIDTH)
    rows, lo_label, hi_label = coef_table(res, level)
    namew = max([12] + [len(n) + 1 for n in res.names])
    head = (
        f"{'':<{namew}}{'coef':>10}{'std err':>11}{'z':>9}{'P>|z|':>9}"
        f"{lo_label:>11}{hi_label:>11}"
    )
    width = max(_WIDTH, len(head))
    lines += [head, "-" * width]
    for name, est, se, z, p, lo, hi in rows:
        zs = f"{z:>9.3f}" if np.isfinite(z) else f"{'nan':>9}"
        ps = f"{p:>9.3f}" if np.isfinite(p) else f"{'nan':>9}"
        lines.append(f"{name:<{namew}}{_fmt(est)}{_fmt(se, 11)}{zs}{ps}{_fmt(lo, 11)}{_fmt(hi, 11)}")
    lines.append("=" * width)
    status = Status(int(res.status))
    if getattr(res, "starts", None) is not None:  # a multi-start fit: what the starts found
        lines += textwrap.wrap(f"Starts: {str(res.starts).splitlines()[0]} (loglik: "
                               + ", ".join(f"{m.loglik:.6g} x{m.n_starts}" for m in res.starts.maxima) + ")", width)
    lines.append(f"Flags: {flag_words(res)}")
    lines += textwrap.wrap(f"Status: {status.name}: {res.message}.", width)
    return "\n".join(lines)


def summary_html(res, level=0.95) -> str:
    e = html.escape
    head = "".join(
        f"<tr><th>{e(a)}</th><td>{e(b)}</td><th>{e(c)}</th><td>{e(d)}</td></tr>"
        for a, b, c, d in _header_pairs(res)
    )
    rows, lo_label, hi_label = coef_table(res, level)
    cols = ["", "coef", "std err", "z", "P>|z|", lo_label, hi_label]
    body = "".join(
        "<tr><th>" + e(r[0]) + "</th>" + "".join(f"<td>{_fmt(v).strip()}</td>" for v in r[1:]) + "</tr>"
        for r in rows
    )
    return (
        "<div><b>mlejax maximum-likelihood fit</b>"
        f"<table>{head}</table>"
        "<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in cols) + f"</tr>{body}</table>"
        f"<p>Flags: {e(flag_words(res))}</p>"
        f"<p>Status: {e(Status(int(res.status)).name)}: {e(res.message)}.</p></div>"
    )
