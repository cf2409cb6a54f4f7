"""Small built-in datasets for examples and tests (public domain or simulated)."""

from __future__ import annotations

import numpy as np

__all__ = ["challenger", "censored_weibull"]

# Space Shuttle O-ring data (NASA, public domain; Dalal, Fowlkes & Hoadley 1989):
# launch temperature (deg F) and whether any O-ring showed thermal distress.
_CHALLENGER_TEMP = [66, 70, 69, 68, 67, 72, 73, 70, 57, 63, 70, 78, 67, 53, 67, 75, 70, 81, 76,
                    79, 75, 76, 58]
_CHALLENGER_FAIL = [0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1]


def challenger() -> dict:
    """The 23 pre-Challenger Shuttle launches: ``temperature`` (deg F) and
    ``failure`` (1 if any O-ring showed thermal distress)."""
    return {
        "temperature": np.asarray(_CHALLENGER_TEMP, dtype=float),
        "failure": np.asarray(_CHALLENGER_FAIL, dtype=float),
    }


def censored_weibull(n: int = 1000, n_covariates: int = 5, seed: int = 0) -> dict:
    """Simulated right-censored survival times from a Weibull regression.

    ``t_i = min(T_i, C_i)`` with ``T_i ~ Weibull(shape=1.5, scale=exp(x_i' beta))`` and
    exponential censoring; returns ``X`` (n x (1 + n_covariates), first column ones),
    ``t``, ``event`` (1 observed, 0 censored) and the true ``beta`` and ``shape``.
    """
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.ones(n), rng.normal(size=(n, n_covariates))])
    beta = np.concatenate([[3.0], np.linspace(0.5, -0.5, n_covariates)])
    shape = 1.5
    t_event = np.exp(x @ beta) * rng.weibull(shape, size=n)
    t_censor = rng.exponential(np.exp(3.5), size=n)
    return {
        "X": x,
        "t": np.minimum(t_event, t_censor),
        "event": (t_event <= t_censor).astype(float),
        "beta": beta,
        "shape": shape,
    }
