"""``mj.GaussianMixture``: closed-form EM for Gaussian mixtures, four covariance types.

The E-step is one matrix product. A Gaussian log-density is linear in the
features ``z(x) = [1, x, x_i x_j (i <= j)]`` (``[1, x, x^2]`` for diagonal
covariances) with coefficients ``theta_k`` built from the Cholesky factor of
``Sigma_k`` once per M-step, so ``log w_k + log N(x | mu_k, Sigma_k) = z(x) @ theta_k``
for all points and components at once; the M-step's sufficient statistics are
``resp^T z``, a second matrix product. The data are centred once (by their
weighted mean) so that the products do not lose precision; the reported
log-likelihood, responsibilities and standard errors use the numerically robust
Cholesky form ``|L^{-1}(x - mu)|^2`` on the original data. With more than 16
features (d(d+1)/2 quadratic features per point would be a large array) the
E-step uses that Cholesky form too.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from .._constraints import default_float_dtype

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
_LOG_2PI = math.log(2.0 * math.pi)


class GMMData(NamedTuple):
    x_orig: Any  # (n, d) the data as given
    w: Any  # (n,) frequency weights
    total: Any  # sum of the weights
    shift: Any  # (d,) weighted mean of the data (the centring)
    xc: Any  # (n, d) centred data
    z: Any  # (n, f) features, linear in which the log-density is


class GMMState(NamedTuple):
    weights: Any
    means: Any  # centred
    covariances: Any  # scikit-learn's shape for the covariance type
    theta: Any  # (f, k) coefficients of the log-density in the features


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _chol_inv(cov):
    """Cholesky factor L of cov and L^{-1} (batched over leading axes)."""
    L = jnp.linalg.cholesky(cov)
    eye = jnp.broadcast_to(jnp.eye(cov.shape[-1], dtype=cov.dtype), cov.shape)
    return L, solve_triangular(L, eye, lower=True)


@dataclasses.dataclass(frozen=True)
class GaussianMixture:
    """A mixture of ``n_components`` multivariate Gaussians, fitted by :func:`mlejax.em`.

    Args:
        n_components: number of components K >= 1.
        covariance_type: ``"full"`` (one covariance per component, ``(K, d, d)``),
            ``"tied"`` (one shared, ``(d, d)``), ``"diag"`` (``(K, d)`` variances) or
            ``"spherical"`` (``(K,)`` one variance per component) -- scikit-learn's
            shapes.
        reg_covar: added to the diagonal of every covariance in each M-step, so a
            component that collapses onto a point stays positive definite (>= 0;
            with 0 a collapse is an error that says what to change).

    ``params`` of the result: ``{"weights": (K,), "means": (K, d), "covariances": ...}``.

    Examples:
        >>> import numpy as np, mlejax as mj
        >>> rng = np.random.default_rng(0)
        >>> x = np.concatenate([rng.normal(-3, 1, (150, 2)), rng.normal(3, 1, (150, 2))])
        >>> res = mj.em(mj.GaussianMixture(2, covariance_type="diag"), x, stderr=False)
        >>> res.params["means"].shape, res.params["covariances"].shape
        ((2, 2), (2, 2))
    """

    n_components: int
    covariance_type: str = "full"
    reg_covar: Any = 1e-6

    def __post_init__(self):
        k = self.n_components
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"n_components={k!r} must be an integer >= 1 (the number of mixture components).")
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"covariance_type={self.covariance_type!r} is not known; use one of {COVARIANCE_TYPES}.")
        r = self.reg_covar
        if r is not None and _is_concrete(r):
            if isinstance(r, (str, bytes, bool)):
                raise TypeError(f"reg_covar={r!r} must be a number >= 0 (default 1e-6).")
            try:
                v = float(r)
            except (TypeError, ValueError):
                raise TypeError(f"reg_covar={r!r} must be a number >= 0 (default 1e-6).") from None
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(
                    f"reg_covar={r!r} must be a finite number >= 0 (default 1e-6): it is added to the "
                    "diagonal of each covariance to keep it positive definite."
                )

    # -- static/dynamic split (reg_covar is an array under jit: no recompiles) -----------
    def static(self):
        return dataclasses.replace(self, reg_covar=None)

    def hyper(self):
        return {"reg_covar": jnp.asarray(self.reg_covar, default_float_dtype())}

    def with_hyper(self, h):
        return dataclasses.replace(self, reg_covar=h["reg_covar"])

    def with_components(self, k):
        return dataclasses.replace(self, n_components=k)

    @property
    def _diagonal(self):
        return self.covariance_type in ("diag", "spherical")

    # -- host-side validation -----------------------------------------------------------
    def validate_data(self, data):
        x = _as_data(data)
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2:
            raise ValueError(f"data has shape {x.shape}; a Gaussian mixture needs (n_samples, n_features).")
        if x.shape[1] == 0:
            raise ValueError(f"data has shape {x.shape}: no features. A Gaussian mixture needs at least one "
                             "column (n_samples, n_features >= 1).")
        # NaN/inf are refused after the compiled fit (one pass fused into it, no extra sync).
        return x

    def validate_init(self, params, x):
        return validate_gmm_init(params, self.n_components, x.shape[1], self.covariance_type, x.dtype)

    # -- the EM pieces ------------------------------------------------------------------
    def prepare(self, x, w, shift=None):
        """The data for EM; ``shift`` (default: the weighted mean of ``x``) centres them
        (a streamed fit passes the mean of all chunks, so their statistics add up)."""
        total = jnp.sum(w)
        shift = (w @ x) / total if shift is None else shift
        xc = x - shift
        n, d = x.shape
        ones = jnp.ones((n, 1), x.dtype)
        if self._diagonal:
            z = jnp.concatenate([ones, xc, xc * xc], 1)
        elif self._quadratic_features(d):
            i, j = np.triu_indices(d)
            z = jnp.concatenate([ones, xc, xc[:, i] * xc[:, j]], 1)
        else:
            z = None  # many features: the Cholesky form is used instead (no n x d^2 array)
        return GMMData(x, w, total, shift, xc, z)

    @staticmethod
    def _quadratic_features(d):
        """The one-GEMM E-step needs d(d+1)/2 quadratic features per point: used for
        d <= 16 (at most 153 features); above, the per-component Cholesky form."""
        return d <= 16

    def _stats(self, resp_w, data):
        """Sufficient statistics ``[sum r, sum r x, sum r x_i x_j (i <= j)]`` per component."""
        if data.z is not None:
            return resp_w.T @ data.z
        xc = data.xc
        i, j = np.triu_indices(xc.shape[1])
        sxx = jnp.einsum("nk,nd,ne->kde", resp_w, xc, xc)[:, i, j]
        return jnp.concatenate([jnp.sum(resp_w, 0)[:, None], resp_w.T @ xc, sxx], 1)

    def kmeans_features(self, data):
        return data.xc

    def _theta(self, weights, means, cov):
        """Coefficients (f, k) with ``z(x) @ theta = log w_k + log N(x | mu_k, Sigma_k)``."""
        k, d = means.shape
        logw = jnp.log(weights)
        if self._diagonal:
            var = cov if self.covariance_type == "diag" else jnp.broadcast_to(cov[:, None], (k, d))
            prec = 1.0 / var
            b = means * prec
            c = logw - 0.5 * d * _LOG_2PI - 0.5 * jnp.sum(jnp.log(var), 1) - 0.5 * jnp.sum(means * b, 1)
            return jnp.concatenate([c[:, None], b, -0.5 * prec], 1).T
        L, Li = _chol_inv(cov)
        if self.covariance_type == "tied":
            L, Li = L[None], Li[None]
        lam = jnp.einsum("kji,kjl->kil", Li, Li)  # Sigma^{-1} = L^{-T} L^{-1}
        lam = jnp.broadcast_to(lam, (k, d, d))
        half_logdet = jnp.sum(jnp.log(jnp.diagonal(L, axis1=1, axis2=2)), 1)
        b = jnp.einsum("kde,ke->kd", lam, means)
        c = logw - 0.5 * d * _LOG_2PI - half_logdet - 0.5 * jnp.sum(means * b, 1)
        i, j = np.triu_indices(d)
        q = lam[:, i, j] * np.where(i == j, -0.5, -1.0)
        return jnp.concatenate([c[:, None], b, q], 1).T

    def m_step(self, state, stats, data):
        k = self.n_components
        d = data.xc.shape[1]
        dtype = data.xc.dtype
        nk_raw = stats[:, 0]
        nk = nk_raw + 10 * jnp.finfo(dtype).eps  # as scikit-learn: an empty component stays finite
        weights = nk / jnp.sum(nk)
        means = stats[:, 1 : 1 + d] / nk[:, None]
        second = stats[:, 1 + d :]
        reg = jnp.asarray(self.reg_covar, dtype)
        if self._diagonal:
            var = second / nk[:, None] - means * means + reg
            cov = var if self.covariance_type == "diag" else jnp.mean(var, 1)
        else:
            i, j = np.triu_indices(d)
            s = jnp.zeros((k, d, d), dtype).at[:, i, j].set(second)
            s = s + jnp.swapaxes(jnp.triu(s, 1), 1, 2)  # symmetric raw second moments
            eye = jnp.eye(d, dtype=dtype)
            if self.covariance_type == "full":
                cov = s / nk[:, None, None] - means[:, :, None] * means[:, None, :] + reg * eye
            else:  # tied
                mm = jnp.einsum("k,kd,ke->de", nk, means, means)
                cov = (jnp.sum(s, 0) - mm) / jnp.sum(nk) + reg * eye
        return GMMState(weights, means, cov, self._theta(weights, means, cov))

    def e_step(self, state, data):
        if data.z is not None:
            lp = data.z @ state.theta
        else:
            p = {"weights": state.weights, "means": state.means, "covariances": state.covariances}
            lp = self.log_joint(p, data.xc)
        lse = jax.nn.logsumexp(lp, axis=1)
        resp = jnp.exp(lp - lse[:, None]) * data.w[:, None]
        return self._stats(resp, data), jnp.sum(data.w * lse)

    def init_from_resp(self, resp, data):
        return self.m_step(None, self._stats(resp * data.w[:, None], data), data)

    def state_from_params(self, params, data):
        means = params["means"] - data.shift
        return GMMState(params["weights"], means, params["covariances"],
                        self._theta(params["weights"], means, params["covariances"]))

    def is_valid(self, state):
        return jnp.all(jnp.isfinite(state.theta))

    def spread(self, params, log_joint, data):
        """Each component's smallest variance relative to the data's (standardised), (K,).
        ``reg_covar`` keeps it away from 0 (a component on at most d distinct points is
        then regularised, as scikit-learn does); with ``reg_covar=0``, or one negligible
        against the data's scale, it reaches 0 and the likelihood is unbounded."""
        cov, k = params["covariances"], self.n_components
        var = (data.w @ (data.xc * data.xc)) / data.total
        var = jnp.where(var > 0, var, 1.0)
        if self.covariance_type == "spherical":
            return cov / jnp.mean(var)
        if self.covariance_type == "diag":
            return jnp.min(cov / var, axis=1)
        s = 1.0 / jnp.sqrt(var)
        return jnp.broadcast_to(jnp.linalg.eigvalsh(cov * s[:, None] * s[None, :])[..., 0], (k,))

    def params_from_state(self, state, data):
        return {"weights": state.weights, "means": state.means + data.shift, "covariances": state.covariances}

    # -- densities of the fitted model --------------------------------------------------
    def log_joint(self, params, x):
        """``log w_k + log N(x_i | mu_k, Sigma_k)``, (n, K), by Cholesky solves."""
        w, mu, cov = params["weights"], params["means"], params["covariances"]
        k, d = mu.shape
        if self._diagonal:
            var = cov if self.covariance_type == "diag" else jnp.broadcast_to(cov[:, None], (k, d))
            prec = 1.0 / var
            maha = jnp.sum((x[:, None, :] - mu[None]) ** 2 * prec[None], -1)
            logdet = jnp.sum(jnp.log(var), 1)
        else:
            L, Li = _chol_inv(cov)
            if self.covariance_type == "tied":
                L, Li = L[None], Li[None]
            Li = jnp.broadcast_to(Li, (k, d, d))
            y = jnp.einsum("nd,ked->nke", x, Li) - jnp.einsum("kd,ked->ke", mu, Li)[None]
            maha = jnp.sum(y * y, -1)
            logdet = 2.0 * jnp.broadcast_to(jnp.sum(jnp.log(jnp.diagonal(L, axis1=1, axis2=2)), 1), (k,))
        return jnp.log(w) - 0.5 * (d * _LOG_2PI + logdet + maha)

    def log_joint_fast(self, params, x):
        """``log_joint`` as one matrix product of quadratic features (for the Hessian
        behind the standard errors: its tangents batch into one GEMM). The data are
        centred on their mean first, a constant shift that leaves derivatives with
        respect to the parameters unchanged."""
        w, mu, cov = params["weights"], params["means"], params["covariances"]
        c = jnp.mean(x, 0)
        xc = x - c
        d = x.shape[1]
        ones = jnp.ones((x.shape[0], 1), x.dtype)
        if self._diagonal:
            z = jnp.concatenate([ones, xc, xc * xc], 1)
        else:
            i, j = np.triu_indices(d)
            z = jnp.concatenate([ones, xc, xc[:, i] * xc[:, j]], 1)
        return z @ self._theta(w, mu - c, cov)

    def nparams(self, x):
        k, d = self.n_components, x.shape[1]
        cov = {"full": k * d * (d + 1) // 2, "tied": d * (d + 1) // 2, "diag": k * d, "spherical": k}
        return k - 1 + k * d + cov[self.covariance_type]

    # -- the unconstrained parametrisation for standard errors ---------------------------
    def to_free(self, params):
        w, mu, cov = params["weights"], params["means"], params["covariances"]
        alr = jnp.log(w[:-1]) - jnp.log(w[-1])
        return jnp.concatenate([alr, mu.ravel(), cov_to_free(cov, self._diagonal)])

    def from_free(self, u, like):
        k, d = like["means"].shape
        alr = jnp.concatenate([u[: k - 1], jnp.zeros((1,), u.dtype)])
        w = jax.nn.softmax(alr)
        mu = u[k - 1 : k - 1 + k * d].reshape(k, d)
        cov = cov_from_free(u[k - 1 + k * d :], like["covariances"].shape, self._diagonal)
        return {"weights": w, "means": mu, "covariances": cov}

    def sample(self, key, params, n):
        w = params["weights"]
        k1, k2 = jax.random.split(key)
        comp = jax.random.categorical(k1, jnp.log(w), shape=(n,))
        return sample_gaussian(k2, params["means"], params["covariances"], comp, self._diagonal), comp


# -- the covariance structures, shared with the Gaussian HMM ----------------------------


def cov_to_free(cov, diagonal):
    """Covariances (any of the four shapes) -> unconstrained vector: log variances,
    or Cholesky factors with log diagonals (``np.tril_indices`` order)."""
    if diagonal:
        return jnp.log(cov).ravel()
    d = cov.shape[-1]
    i, j = np.tril_indices(d)
    eye = jnp.eye(d, dtype=bool)
    L = jnp.linalg.cholesky(cov)
    L = jnp.where(eye, jnp.log(jnp.where(eye, L, 1.0)), L)
    return L[..., i, j].ravel()


def cov_from_free(c, shape, diagonal):
    """Inverse of :func:`cov_to_free` for covariances of ``shape``."""
    if diagonal:
        return jnp.exp(c).reshape(shape)
    d = shape[-1]
    i, j = np.tril_indices(d)
    lead = shape[:-2]
    L = jnp.zeros(lead + (d, d), c.dtype).at[..., i, j].set(c.reshape(lead + (-1,)))
    L = jnp.where(jnp.eye(d, dtype=bool), jnp.exp(L), L)
    return L @ jnp.swapaxes(L, -1, -2)


def sample_gaussian(key, means, cov, comp, diagonal):
    """One Gaussian draw per label in ``comp`` (n,), from component ``comp[i]``."""
    k, d = means.shape
    z = jax.random.normal(key, (comp.shape[0], d), means.dtype)
    if diagonal:
        var = cov if cov.ndim == 2 else jnp.broadcast_to(cov[:, None], (k, d))
        return means[comp] + z * jnp.sqrt(var[comp])
    L = jnp.broadcast_to(jnp.linalg.cholesky(cov), (k, d, d))
    return means[comp] + jnp.einsum("nde,ne->nd", L[comp], z)


def _as_data(data):
    if isinstance(data, (str, bytes)) or data is None:
        raise TypeError(f"data must be a numeric array; got {type(data).__name__}.")
    arr = np.asarray(data) if not isinstance(data, jax.Array) else data
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"data has dtype {arr.dtype}; a mixture needs a numeric array.")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError("data are complex; mixtures take real data.")
    return jnp.asarray(arr, default_float_dtype())


def _cov_shape(cov_type, k, d):
    return {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[cov_type]


def validate_weights(w, k, dtype):
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (k,):
        raise ValueError(f"init['weights'] has shape {w.shape}; it needs shape ({k},), one weight per component.")
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(
            f"init['weights'] = {w} must be finite and strictly positive (a zero weight is an "
            "empty component; drop it and use fewer components)."
        )
    if abs(w.sum() - 1.0) > 1e-6:
        raise ValueError(
            f"init['weights'] sums to {w.sum():.8g}, not 1: the mixture weights must be normalised; "
            "pass weights / weights.sum()."
        )
    return jnp.asarray(w, dtype)


def validate_gmm_init(params, k, d, cov_type, dtype):
    if not isinstance(params, dict) or set(params) != {"weights", "means", "covariances"}:
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(
            f"init must be a dict with keys 'weights', 'means', 'covariances' (the shapes of the "
            f"result's params); got {got}."
        )
    w = validate_weights(params["weights"], k, dtype)
    mu = np.asarray(params["means"], dtype=np.float64)
    if mu.shape != (k, d):
        raise ValueError(f"init['means'] has shape {mu.shape}; it needs ({k}, {d}) = (n_components, n_features).")
    if not np.all(np.isfinite(mu)):
        raise ValueError("init['means'] must be finite.")
    cov = np.asarray(params["covariances"], dtype=np.float64)
    shape = _cov_shape(cov_type, k, d)
    if cov.shape != shape:
        raise ValueError(
            f"init['covariances'] has shape {cov.shape}; covariance_type={cov_type!r} needs {shape}."
        )
    if not np.all(np.isfinite(cov)):
        raise ValueError("init['covariances'] must be finite.")
    if cov_type in ("diag", "spherical"):
        if np.any(cov <= 0):
            raise ValueError(
                f"init['covariances'] must be strictly positive variances for covariance_type={cov_type!r}."
            )
    else:
        mats = cov.reshape(-1, d, d)
        for i, m in enumerate(mats):
            where = f"init['covariances'][{i}]" if cov_type == "full" else "init['covariances']"
            if not np.allclose(m, m.T, rtol=1e-8, atol=1e-12):
                raise ValueError(f"{where} is not symmetric; a covariance matrix must equal its transpose.")
            if np.min(np.linalg.eigvalsh(m)) <= 0:
                raise ValueError(
                    f"{where} is not positive definite (smallest eigenvalue "
                    f"{np.min(np.linalg.eigvalsh(m)):.3g}); give a symmetric positive definite matrix."
                )
    return {"weights": w, "means": jnp.asarray(mu, dtype), "covariances": jnp.asarray(cov, dtype)}
