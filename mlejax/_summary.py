"""Text and HTML summaries of a :class:`FitResult` (host-side, statsmodels-like)."""

from __future__ import annotations

import html
import math

import numpy as np

from ._status import Status

_WIDTH = 78


def _rows(res, level=0.95):
    phi = np.asarray(res._spec.natural_flat(res.params))
    se = np.sqrt(np.abs(np.diag(np.asarray(res.cov))))
    se = np.where(np.isfinite(np.diag(np.asarray(res.cov))), se, np.nan)
    z = phi / se
    p = np.array([math.erfc(abs(v) / math.sqrt(2.0)) if np.isfinite(v) else np.nan for v in z])
    q = 1.959963984540054 if level == 0.95 else None
    return [
        (name, phi[i], se[i], z[i], p[i], phi[i] - q * se[i], phi[i] + q * se[i])
        for i, name in enumerate(res.names)
    ]


def _fmt(x, width=10):
    if x is None or not np.isfinite(x):
        return f"{'nan':>{width}}"
    ax = abs(x)
    if ax != 0 and (ax >= 1e5 or ax < 1e-4):
        return f"{x:>{width}.3e}"
    return f"{x:>{width}.4f}"


def _header_pairs(res):
    nobs = "-" if res.nobs is None else str(res.nobs)
    return [
        ("Method:", res.method, "Log-likelihood:", f"{float(res.loglik):.6g}"),
        ("Converged:", str(bool(res.converged)), "AIC:", f"{float(res.aic):.6g}"),
        ("Iterations:", str(int(res.n_iter)), "BIC:", f"{float(res.bic):.6g}"),
        ("No. observations:", nobs, "Covariance:", res.cov_type),
    ]


def summary_text(res) -> str:
    lines = ["mlejax maximum-likelihood fit".center(_WIDTH), "=" * _WIDTH]
    for a, b, c, d in _header_pairs(res):
        lines.append(f"{a:<18}{b:>20}   {c:<18}{d:>19}")
    lines.append("=" * _WIDTH)
    namew = max([12] + [len(n) + 1 for n in res.names])
    head = f"{'':<{namew}}{'coef':>10}{'std err':>11}{'z':>9}{'P>|z|':>9}{'[0.025':>11}{'0.975]':>11}"
    lines += [head, "-" * max(_WIDTH, len(head))]
    for name, est, se, z, p, lo, hi in _rows(res):
        zs = f"{z:>9.3f}" if np.isfinite(z) else f"{'nan':>9}"
        ps = f"{p:>9.3f}" if np.isfinite(p) else f"{'nan':>9}"
        lines.append(f"{name:<{namew}}{_fmt(est)}{_fmt(se, 11)}{zs}{ps}{_fmt(lo, 11)}{_fmt(hi, 11)}")
    lines.append("=" * max(_WIDTH, len(head)))
    status = Status(int(res.status))
    lines.append(f"Status: {status.name}: {res.message}.")
    return "\n".join(lines)


def summary_html(res) -> str:
    e = html.escape
    head = "".join(
        f"<tr><th>{e(a)}</th><td>{e(b)}</td><th>{e(c)}</th><td>{e(d)}</td></tr>"
        for a, b, c, d in _header_pairs(res)
    )
    cols = ["", "coef", "std err", "z", "P>|z|", "[0.025", "0.975]"]
    body = "".join(
        "<tr><th>" + e(r[0]) + "</th>" + "".join(f"<td>{_fmt(v).strip()}</td>" for v in r[1:]) + "</tr>"
        for r in _rows(res)
    )
    return (
        "<div><b>mlejax maximum-likelihood fit</b>"
        f"<table>{head}</table>"
        "<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in cols) + f"</tr>{body}</table>"
        f"<p>Status: {e(Status(int(res.status)).name)}: {e(res.message)}.</p></div>"
    )
