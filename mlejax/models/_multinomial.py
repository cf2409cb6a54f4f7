"""Softmax (multinomial logistic) regression: the pieces ``mj.glm(model="multinomial")``
fits with ``mj.fit``.

Classes are the sorted distinct labels of ``y``; the first is the reference class,
whose linear predictor is fixed at 0 (as statsmodels' ``MNLogit``). ``beta`` has shape
``(p, K - 1)``: column ``j`` holds the log-odds coefficients of class ``j + 1``
against the reference, so ``P(y = k | x) = softmax([0, x' beta])_k``. The
log-likelihood is computed by log-sum-exp (stable for any size of ``x' beta``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Classes(NamedTuple):
    """The labels ``y`` as one-hot rows over the sorted ``classes`` (first: reference)."""

    onehot: np.ndarray  # (n, K) float
    classes: tuple


def encode(y) -> Classes:
    """``y`` (any labels: integers, strings) as one-hot rows over its sorted classes.

    Raises:
        ValueError naming ``y`` when it is not 1-d, has missing values or fewer than
        two classes.
    """
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise ValueError(f"y has shape {labels.shape}; give a 1-d array of class labels.")
    if labels.dtype.kind == "f" and not np.all(np.isfinite(labels)):
        raise ValueError("y contains NaN or inf; give one class label per observation (drop missing rows).")
    if labels.dtype == object and any(v is None for v in labels):
        raise ValueError("y contains missing labels (None); drop those rows.")
    classes, codes = np.unique(labels, return_inverse=True)
    if classes.dtype.kind == "f" and np.all(classes == np.round(classes)):
        classes = classes.astype(np.int64)  # 1.0, 2.0 -> 1, 2 in the names
    if len(classes) < 2:
        raise ValueError(f"y has {len(classes)} class; a multinomial model needs at least two classes.")
    return Classes(np.eye(len(classes))[codes], tuple(c.item() if hasattr(c, "item") else c for c in classes))


def _predictors(beta, x):
    """The linear predictors of all classes, ``[0, x' beta]``, shape ``(n, K)``."""
    eta = x @ beta
    return jnp.concatenate([jnp.zeros(eta.shape[:-1] + (1,), eta.dtype), eta], axis=-1)


def multinomial_loglik(params, data):
    """``sum_i w_i log softmax(eta_i)[y_i]``; ``data = (onehot, X, w)``."""
    onehot, x, w = data
    eta = _predictors(params["beta"], x)
    lp = jnp.sum(onehot * eta, axis=-1) - jax.nn.logsumexp(eta, axis=-1)
    return jnp.sum(jnp.where(w > 0, w * lp, 0.0))


def start(x, onehot, w):
    """Start: equal class probabilities (``beta = 0``), as statsmodels' ``MNLogit``."""
    return {"beta": np.zeros((x.shape[1], onehot.shape[1] - 1))}


def margins(beta, x, onehot):
    """How far each observation's own class beats the others on the log scale:
    ``eta_y - logsumexp(eta_others)`` (for two classes ``(2y - 1) eta`` of the logit)."""
    eta = np.asarray(_predictors(jnp.asarray(beta), jnp.asarray(x)))
    own = np.sum(onehot * eta, axis=1)
    others = np.where(onehot > 0, -np.inf, eta)
    return own - np.asarray(jax.nn.logsumexp(jnp.asarray(others), axis=1))


def names(columns, classes, yname="y") -> tuple:
    """statsmodels' vocabulary: ``"<column>[<y>=<class>]"``, in the order of
    ``beta.ravel()`` (rows: the columns of ``X``; columns: the non-reference classes)."""
    return tuple(f"{c}[{yname}={k}]" for c in columns for k in classes[1:])


__all__ = ["Classes", "encode", "multinomial_loglik", "start", "margins", "names"]
