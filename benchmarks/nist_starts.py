"""NIST StRD nonlinear regression through the generic fit, single start vs ``starts=``.

Every dataset x both certified starts through ``mj.fit`` on the concentrated Gaussian
log-likelihood ``-n/2 * log(RSS(b)/n)`` (the same function for every dataset), from
the certified start alone and with ``starts=S`` (the certified start and S - 1 drawn
around it, ``key=jax.random.key(0)``). A fit is *correct* when every estimate has at
least 6 correct significant digits (LRE against the certified values), *flagged* when
it says it did not converge, *silently wrong* when it says it converged but is not
correct (as in issue 13's table, a correct fit may still be flagged, e.g. NOT_SMOOTH). Also prints what ``res.starts`` found (distinct maxima, the flags).

    .venv/bin/python benchmarks/nist_starts.py [--starts 16] [--method trust-region] [--maxiter 500] [Dataset ...]

``generic_fit(name, start, starts=None)`` is the one fit, for other tables.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import jax
import jax.numpy as jnp
from nist_strd import DATASETS, MODELS, load, lre

import mlejax as mj

jax.config.update("jax_enable_x64", True)


def _concentrated(f):
    def loglik(b, data):
        x, y = data
        r = y - f(b, x)
        return -0.5 * y.shape[0] * jnp.log(jnp.sum(r**2) / y.shape[0])

    return loglik


LOGLIKS = {name: _concentrated(f) for name, f in MODELS.items()}


def generic_fit(name: str, start: int, starts=None, key=None, method="newton", maxiter=None) -> dict:
    """``mj.fit`` of the concentrated log-likelihood of one dataset from certified start
    1 or 2 (``starts``, ``method``, ``maxiter``: as for ``mj.fit``; ``key`` defaults to ``jax.random.key(0)``)."""
    d = load(name)
    if starts is not None and key is None:
        key = jax.random.key(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mj.MLEJaxWarning)
        try:
            res = mj.fit(LOGLIKS[name], d["starts"][start - 1], (d["x"], d["y"]), starts=starts, key=key,
                         method=method, maxiter=maxiter)
        except ValueError as e:  # e.g. not finite at the start
            return dict(digits=0.0, converged=False, status=f"error: {e}"[:60], starts=None)
    digits = min(lre(res.params[k], v) for k, v in d["certified"].items())
    return dict(digits=digits, converged=bool(res.converged), status=mj.Status(int(res.status)).name,
                starts=res.starts)


def _verdict(r) -> str:
    """As in issue 13's table: correct (>= 6 digits, whatever the status), else flagged
    (says it did not converge) or silently wrong (says it converged)."""
    if r["digits"] >= 6:
        return "correct"
    return "silently wrong" if r["converged"] else "flagged"


def main(argv) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--starts", type=int, default=16)
    ap.add_argument("--method", default="newton", help='as for mj.fit, e.g. "trust-region"')
    ap.add_argument("--maxiter", type=int, default=None,
                    help="for the starts= fits only (all starts wait for the slowest); default: the method's")
    ap.add_argument("names", nargs="*")
    args = ap.parse_args(argv)
    names = args.names or DATASETS
    totals = {"single": {}, "starts": {}}
    print(f"{'dataset':<10} {'start':>5} {'single':>16} {'starts=' + str(args.starts):>16}  maxima (flags)")
    t0 = time.perf_counter()
    for name in names:
        for start in (1, 2):
            one = generic_fit(name, start, method=args.method)
            many = generic_fit(name, start, starts=args.starts, method=args.method, maxiter=args.maxiter)
            for kind, r in (("single", one), ("starts", many)):
                v = _verdict(r)
                totals[kind][v] = totals[kind].get(v, 0) + 1
            s = many["starts"]
            info = "-" if s is None else (f"{s.n_converged}/{s.n_starts} conv, {s.n_maxima} maxima"
                                          + (" single-start-best" if s.single_start_best else "")
                                          + (" near-tie" if s.near_tie else ""))
            print(f"{name:<10} {start:>5} {_verdict(one):>16} {_verdict(many):>16}  {info}; status "
                  f"{one['status']} / {many['status']}", flush=True)
    n = 2 * len(names)
    for kind in ("single", "starts"):
        t = totals[kind]
        print(f"{kind:>7}: correct {t.get('correct', 0)}/{n}, flagged {t.get('flagged', 0)}, "
              f"silently wrong {t.get('silently wrong', 0)}")
    print(f"{time.perf_counter() - t0:.0f} s in all")
    return int(totals["starts"].get("silently wrong", 0) > 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
