"""``FitResult``: an immutable pytree holding a fit and its inference."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

from ._hessapprox import ApproxStderr, stderr_approx
from ._hessfree import FREE_COV, delta_cg, stderr_for as cg_stderr_for, stderr_tree
from ._inference import (
    COV_TYPES,
    analyse_information,
    checked_scores_jit,
    cluster_codes,
    covariance,
    normal_quantile,
    pinv_information,
)
from ._jit import model_jit
from ._observations import checked_nobs, require_additive
from ._status import FLOAT32, Status, message as status_message
from ._summary import checked_or_none, display_order, stderr_flat

STOCHASTIC = (
    "a stochastic fit: epochs of minibatch gradient steps (batch_size=), not an exact maximisation; "
    "loglik and grad_norm are from one exact pass over all the data at the final estimate"
)


class DeltaResult(NamedTuple):
    """Estimate and standard error of ``fn(params)`` by the delta method."""

    estimate: Any
    stderr: Any
    cov: Any  # covariance of the flattened estimate


@dataclasses.dataclass(frozen=True)
class FitFields:
    """The fields of a fit, shared by :class:`FitResult` and the stacked
    ``BatchFitResult`` (documented on :class:`FitResult`)."""

    params: Any
    stderr: Any
    cov: Any
    information: Any
    loglik: Any
    converged: Any
    n_iter: Any
    grad_norm: Any
    status: Any
    hessian_not_negdef: Any
    not_identified: Any
    ill_conditioned: Any
    condition_number: Any
    null_vector: Any
    params_at_bound: Any
    x: Any
    _dyn: Any = None
    _data: Any = None
    # static metadata
    names: tuple = ()
    nobs: Any = None
    method: str = "newton"
    cov_type: str = "observed"
    _spec: Any = None
    _loglik: Any = None
    _obs: Any = None  # _observations.Observations: which data leaves are observations
    rough_params: tuple = ()  # names where the likelihood is not smooth (status NOT_SMOOTH)
    diagnosis: tuple = ()  # host-side diagnoses in words, appended to the message
    starts: Any = None  # _starts.StartsSummary of a multi-start fit (starts=), else None
    stochastic: bool = False  # a minibatch fit (batch_size=): see the message

    # -- derived quantities (one fit or stacked) ------------------------------------
    @property
    def nparams(self) -> int:
        return len(self.names)

    @property
    def aic(self):
        return 2.0 * self.nparams - 2.0 * self.loglik

    @property
    def aicc(self):
        n, k = checked_nobs(self, "AICc"), self.nparams
        if n is None or n - k - 1 <= 0:
            return jnp.nan * self.loglik
        return self.aic + 2.0 * k * (k + 1) / (n - k - 1)

    @property
    def bic(self):
        n = checked_nobs(self, "BIC")
        if not n:
            return jnp.nan * self.loglik
        return self.nparams * math.log(n) - 2.0 * self.loglik

    @property
    def not_smooth(self) -> bool:
        """True when the log-likelihood is not smooth on the scale of its standard
        errors (see ``rough_params``)."""
        return bool(self.rough_params)

    @property
    def at_bound(self):
        held = self.params_at_bound
        return (jnp if isinstance(held, jax.core.Tracer) else np).any(held, axis=-1)


def _value_and_jacobian(phi, dyn, *, fn, spec):
    """``(fn(params), J)``: ``fn`` at the natural flat vector ``phi`` and the Jacobian
    of its flattened value in ``phi``, ``(m, k)``."""

    def flat(p):
        return jax.flatten_util.ravel_pytree(fn(spec.from_natural_flat(p, dyn)))[0]

    return fn(spec.from_natural_flat(phi, dyn)), jax.jacobian(flat)(phi)


# one compiled program per function (run eagerly, every operation of fn and of its
# derivative would compile a small program of its own on a first call)
_value_and_jacobian_jit = model_jit(_value_and_jacobian, "fn", static_argnames=("spec",))


def _unravel_like(tree, flat):
    """``flat`` (the concatenated leaves) shaped like ``tree``'s leaves."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    out, i = [], 0
    for leaf in leaves:
        n = int(np.size(leaf))
        out.append(flat[i:i + n].reshape(np.shape(leaf)))
        i += n
    return jax.tree_util.tree_unflatten(treedef, out)


@dataclasses.dataclass(frozen=True)
class FitResult(FitFields):
    """The result of :func:`mlejax.fit`. An immutable pytree: ``jax.vmap`` over a fit
    returns one with a leading batch axis on every array.

    Attributes:
        params: the estimates, a pytree like ``init``, on the natural scale.
        stderr: standard errors, same pytree (NaN for fixed leaves and wherever the
            covariance cannot be trusted: for every ``status`` other than ``SUCCESS``,
            all of them; ``res.with_cov("observed")`` recomputes the raw ones from
            ``information`` for those who want them anyway).
        cov: covariance (k x k) of the free parameters, in the order of ``names``
            (NaN unless ``status`` is ``SUCCESS``, like ``stderr``).
        information: observed Fisher information, minus the Hessian of the
            log-likelihood at the estimate, natural scale, free parameters (k x k).
        names: flat names of the free parameters, e.g. ``"mu"``, ``"beta[2]"``.
        loglik: maximised log-likelihood. nobs: number of observations.
        converged: True only for status ``SUCCESS``. n_iter: iterations used.
        grad_norm: norm of the final gradient on the optimiser's scale.
        status: a :class:`mlejax.Status` code; ``message`` says it in words.
        hessian_not_negdef: the Hessian of the log-likelihood is not negative
            definite (or not finite) at the end; status ``NOT_MAXIMUM`` if the
            gradient vanished there. Standard errors are NaN.
            Causes: the fit stopped at a saddle point or a minimum (e.g. started
            exactly at a symmetric stationary point); the maximum lies on a
            boundary the optimiser cannot reach; the log-likelihood is not smooth
            or not finite there.
            Fix: start from another point; constrain the parameter
            (``mj.Positive``/``mj.Bounded``); check the log-likelihood.
        not_identified: the observed information is singular: the combination
            ``null_vector`` of parameters (in words: ``null_combination()``) is not
            determined by the data; status ``NOT_IDENTIFIED``. Standard errors are
            NaN; ``with_cov("pinv")`` gives labelled pseudo-inverse ones.
            Causes: redundant parameters (only ``a - b`` enters the model);
            collinear covariates or perfect separation; a parameter that does not
            enter the likelihood; a plateau (flat likelihood); fewer observations
            than parameters.
            Fix: fix (``mj.Fixed``) or drop a parameter of the named combination;
            reparametrise; add data.
        ill_conditioned: the correlation-scaled information has a condition number
            ``condition_number`` above 1/sqrt(eps) (6.7e7 in float64): standard
            errors are computed but sensitive to rounding.
            Causes: nearly collinear covariates; nearly redundant parameters;
            parameters on very different scales that also correlate.
            Fix: centre and scale covariates; drop one of a near-duplicate pair;
            reparametrise (e.g. orthogonal polynomials).
        condition_number: largest over smallest eigenvalue of the
            correlation-scaled information (inf when singular).
        null_vector: unit vector (over ``names``, natural units) of the
            least-determined parameter combination.
        params_at_bound: per free parameter, True if it is within half a standard
            error of a bound of its constraint (iminuit's rule).
            Causes: the MLE is on the boundary of the parameter space (a variance
            component of zero, a probability of 0 or 1, a non-negative effect
            estimated as zero); a bound set too tight.
            Fix: Wald standard errors and intervals are unreliable there, use
            ``conf_int(method="profile")``, which respects the bound; loosen the
            bound if it is not part of the model.
        x: the optimum on the optimiser's unconstrained scale (a flat vector).
        stochastic: True for a minibatch fit (``batch_size=``): the estimate is where
            the stochastic optimiser stopped; ``loglik`` and ``grad_norm`` come from an
            exact pass over all the data there, and the status is ``SUCCESS`` only if
            the exact Newton decrement there is below ``tol`` (which needs the Hessian:
            never with ``cov=None``).
        rough_params: names of the parameters along which the log-likelihood is not
            smooth on the scale of its standard errors (status ``NOT_SMOOTH``;
            ``not_smooth`` is True): the autodiff curvature at the estimate and the
            change of the exact gradient over +- one standard error differ by more
            than a factor of 3. Standard errors are NaN.
            Causes: numerical noise (simulation, quadrature, an inner solver), kinks
            (``abs``, ``max``, ``where``) or steps near the estimate.
            Fix: make the log-likelihood smooth and accurate; use
            ``conf_int(method="profile")`` or ``mj.bootstrap`` instead of Wald errors.
        starts: for a multi-start fit (``mj.fit(..., starts=...)``) a
            :class:`mlejax.StartsSummary`: how many starts converged, the distinct
            maxima they reached (``maxima``, ``logliks``, ``counts``) and the flags
            ``single_start_best``, ``near_tie`` and ``higher_unconverged`` (also in ``message``);
            None for a single start.
    """

    def __post_init__(self):
        # a single concrete fit reports its status as an mj.Status (arrays under vmap/jit)
        st = self.status
        if isinstance(st, (np.ndarray, jax.Array, np.integer)) and _is_concrete(st) and np.ndim(st) == 0:
            object.__setattr__(self, "status", Status(int(st)))

    @property
    def message(self) -> str:
        """The status in words, with the flags that qualify it (single fits)."""
        msg = status_message(self.status, "free" if self.cov_type in FREE_COV else "fit")
        notes = list(self.diagnosis) + self._flag_notes()
        msg = msg + ("" if not notes else "; " + "; ".join(notes))
        if self.stochastic:
            msg = f"{STOCHASTIC}. Then: {msg}"
        if jnp.result_type(self.loglik) == jnp.float32 and (notes or int(self.status) != Status.SUCCESS):
            msg = f"{FLOAT32}. Then: {msg}"  # float32 is named first: the likely cause
        return msg

    def _flag_notes(self) -> list[str]:
        notes = []
        if self.cov_type is None:
            notes.append("no inference (cov=None): res.stderr_for([...]) and res.delta(fn) give "
                         "Hessian-free standard errors, res.stderr_approx() labelled approximations")
        elif self.cov_type == "hvp":
            notes.append("Hessian-free inference (cov='hvp'): standard errors by conjugate gradients "
                         "for the parameters asked for (stderr_for=), NaN for the others")
        if self.cov_type == "pinv":
            nan_se = "standard errors are from the pseudo-inverse fallback (cov_type 'pinv')"
        else:
            nan_se = (
                "standard errors are NaN (res.with_cov('pinv') gives labelled pseudo-inverse ones)"
            )
        if bool(self.hessian_not_negdef):
            if int(self.status) != Status.NOT_MAXIMUM:
                notes.append("the Hessian is not negative definite")
            notes.append(nan_se)
        if bool(self.not_identified):
            if int(self.status) != Status.NOT_IDENTIFIED:
                notes.append("the observed information is singular")
            notes.append(f"the data do not determine the combination {self.null_combination()}")
            notes.append(nan_se)
        if bool(self.ill_conditioned):
            notes.append(
                f"the information is ill-conditioned (condition number "
                f"{float(self.condition_number):.3g}): standard errors are sensitive to rounding"
            )
        if bool(self.at_bound):
            at = [n for n, b in zip(self.names, np.asarray(self.params_at_bound)) if b]
            notes.append(
                f"{', '.join(at)} at or near a bound: Wald standard errors and intervals are "
                "unreliable there; use conf_int(method='profile')"
            )
        if self.rough_params and int(self.status) != Status.NOT_SMOOTH:
            notes.append(
                f"the log-likelihood is not smooth along {', '.join(self.rough_params)} on the "
                "scale of its standard errors: standard errors are NaN"
            )
        if self.nobs is not None and self.nobs <= self.nparams:
            notes.append(
                f"only {self.nobs} observations for {self.nparams} parameters: the covariance "
                "is not identified or unreliable"
            )
        if self.starts is not None:
            notes.extend(self.starts.notes())
        return notes

    def null_combination(self, tol: float = 0.05) -> str:
        """The parameter combination the data determine least, as text, e.g.
        ``0.707*a + 0.707*b`` (coefficients of the unit eigenvector of the
        correlation-scaled information with the smallest eigenvalue, rescaled to the
        parameters' units; terms below ``tol`` are left out)."""
        v = np.asarray(self.null_vector)
        v = v * np.sign(v[np.argmax(np.abs(v))]) if v.size else v
        out = ""
        for c, n in zip(v, self.names):
            if abs(c) <= tol:
                continue
            term = f"{abs(c):.3g}*{n}"
            if out:
                out += (" + " if c > 0 else " - ") + term
            else:
                out = term if c > 0 else "-" + term
        return out or "(none)"

    # -- inference methods -----------------------------------------------------------
    def _phi(self, xp=jnp):
        """The free parameters' natural values, flat (``xp=np``: on the host, compiling nothing)."""
        return self._spec.natural_flat(jax.tree_util.tree_map(xp.asarray, self.params), xp)

    def conf_int(self, level: float = 0.95, method: str = "wald", *, progress=None):
        """Confidence intervals, a pytree like ``params`` of ``(low, high)`` pairs.

        ``method="wald"``: estimate +- z * stderr (asymptotic normality; NaN where
        the standard error is).
        ``method="profile"``: inverts the likelihood-ratio test: the set of values
        whose profile deviance ``2 (loglik_hat - profile(v))`` is at most the
        chi-squared(1) quantile, the other parameters re-maximised at each value.
        Each end is root-found (bracket expansion, then safeguarded Newton) on the
        optimiser's scale, so it respects constraints: an end never crosses a bound
        (if the deviance stays below the quantile up to a bound, the bound is the
        end; ``+-inf`` for an unbounded parameter the data do not bound, e.g. a
        non-identified one). All ends are computed in one compiled, vmapped call,
        reused for every level and for new data of the same shapes.
        Fixed leaves get ``(nan, nan)``. For a single fit the ends are Python floats
        (numpy arrays for array leaves); under ``vmap``/``jit`` they are JAX arrays.
        ``progress`` (profile only): ``True`` reports each parameter's interval as
        it is found, one call per parameter (see :mod:`mlejax.progress`; the default
        shows a bar only for slow work in an interactive session).
        """
        _check_level(level)
        if method == "wald" and self.stderr is None:
            raise ValueError(f"this fit has no standard errors (cov={self.cov_type!r}); use "
                             "conf_int(method='profile'), or res.stderr_for([...]) (Hessian-free).")
        if method == "wald":
            z = normal_quantile(0.5 + level / 2.0)
            to_pair = lambda p, s: (p - z * s, p + z * s)  # noqa: E731
            out = jax.tree_util.tree_map(to_pair, self.params, self.stderr)
        elif method == "profile":
            from ._profile import profile_conf_int

            out = profile_conf_int(self, level, progress)
        else:
            raise ValueError(f"method={method!r}; use 'wald' or 'profile'.")
        return _to_host(out) if _is_concrete(self.loglik) else out

    def profile(self, name, grid, *, progress=None):
        """The profile log-likelihood of one parameter over ``grid`` (natural scale).

        ``name`` is an element name from ``names`` (e.g. ``"beta[2]"``) or its index.
        At each grid value the other free parameters are re-maximised (Newton,
        warm-started from the estimate, vmapped over the grid). Returns a
        :class:`mlejax.Profile` with ``values``, ``loglik``, ``deviance``
        (``2 (loglik_hat - loglik)``), the re-maximised ``params`` and ``converged``.
        Compiled once per model and grid length. For a MAP fit (``log_prior``) the
        log-posterior is profiled. ``progress``: ``True`` reports the grid points
        done, the grid then running in about 20 calls (see :mod:`mlejax.progress`).
        """
        from ._profile import profile

        return profile(self, name, grid, progress)

    def delta(self, fn) -> DeltaResult:
        """Estimate and standard error of ``fn(params)`` by the delta method.

        ``fn`` takes the params pytree (natural scale) and returns an array or
        pytree; its gradient comes from autodiff. Without a dense covariance
        (``cov=None`` or ``"hvp"``) ``J I^-1 J'`` comes from conjugate-gradient solves
        on Hessian-vector products (:mod:`mlejax._hessfree`), no k x k matrix formed. By the invariance of the MLE the
        estimate of ``fn(theta)`` is ``fn(theta_hat)``. On a stack of fits (the result
        of ``jax.vmap`` over ``mj.fit``) it is computed for every fit.
        """
        if _is_concrete(self.loglik) and jnp.ndim(self.loglik) > 0:
            return jax.vmap(lambda r: r.delta(fn))(self)
        concrete = _is_concrete(self.loglik)
        xp = np if concrete else jnp  # a single fit: the linear algebra on the host, compiling nothing
        phi = self._phi(xp)
        parts = _value_and_jacobian_jit if concrete else _value_and_jacobian
        est_tree, jac = parts(phi, self._dyn, fn=fn, spec=self._spec)
        jac = jac.reshape(-1, phi.shape[0])
        if self.cov is None:  # no dense covariance (cov=None or "hvp"): J I^-1 J' by conjugate gradients
            cov = delta_cg(self, jac)
        else:
            jac = xp.asarray(jac)
            cov = jac @ xp.asarray(self.cov) @ jac.T
        return DeltaResult(est_tree, _unravel_like(est_tree, xp.sqrt(xp.diag(cov))), cov)

    def stderr_for(self, which, *, data=None, tol: float = 1e-10, maxiter=None) -> dict:
        """Standard errors of chosen free parameters without a dense Hessian.

        One conjugate-gradient solve ``I z = e_i`` per parameter, each step a
        Hessian-vector product of the log-likelihood on the natural scale (never the
        k x k information): for fits with many parameters (``cov=None`` or ``"hvp"``).
        At convergence (relative residual ``tol``) they equal the dense ones; NaN
        where CG meets non-positive curvature (not a maximum, not identified) or does
        not converge in ``maxiter`` steps (default ``10 k``).

        Args:
            which: a name from ``names`` (``"w[3]"``), a leaf name (``"w"``: all its
                elements), an index, or a list of these.
            data: the data to evaluate the information on (default: the fit's own).
            tol, maxiter: CG tolerance and step limit.

        Returns:
            ``{name: stderr}`` as Python floats.

        Examples:
            >>> import jax, jax.numpy as jnp, numpy as np, mlejax as mj
            >>> x = np.array([0.5, 1.5, 2.0, 3.0])
            >>> ll = lambda p, x: jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], 1.0))
            >>> res = mj.fit(ll, {"mu": 0.0}, x, cov=None)
            >>> round(res.stderr_for("mu")["mu"], 6)  # 1 / sqrt(n)
            0.5
        """
        _check_single_fit(self, "stderr_for()")
        return cg_stderr_for(self, which, data=data, tol=tol, maxiter=maxiter)

    def stderr_approx(self, method: str = "diag", *, rank=None, steps=None, probes=None, key=None,
                      data=None) -> ApproxStderr:
        """APPROXIMATE standard errors of all free parameters, without a dense Hessian.

        For fits too large for exact inference (``res.stderr_for`` solves one CG
        system per parameter). The result is an :class:`mlejax.ApproxStderr`, labelled
        an approximation in its name, ``approximation`` field and summary; ``res.stderr``
        is left as it is. When the observed information ``I`` is positive definite both
        methods give *lower bounds* on the exact variances ``(I^-1)_ii``:

        - ``"diag"``: ``1 / I_ii``, too small by the factor ``1 - R_i^2`` (``R_i`` the
          multiple correlation of estimate ``i`` with the others); exact when the
          information is diagonal. ``I_ii`` exactly (k Hessian-vector products, in
          blocks of 8) or, with ``probes=m``, estimated from ``m`` random Rademacher
          probes (Bekas et al. 2007: unbiased for ``I_ii``, noisy; exact for a diagonal
          ``I``).
        - ``"lanczos"``: the ``rank`` largest eigenpairs ``(lambda_j, v_j)`` of ``I`` by
          ``steps`` Lanczos iterations (one Hessian-vector product each, full
          reorthogonalisation; default ``min(k, 2 rank + 10)``); covariance
          ``sum_j v_j v_j' / lambda_j`` plus ``(1 - V V') / lambda_rank`` for the rest of
          the spectrum (whose eigenvalues are at most ``lambda_rank``). The leading
          eigenpairs are the best-determined directions, so poorly determined
          parameters get most of their variance from that fill. Exact at ``rank = k``.
          ``residuals`` tell whether the pairs have converged.

        A non-positive ``I_ii`` or Ritz value (``I`` not positive definite: not a
        maximum, or not identified) gives NaN with ``indefinite`` set.

        Args:
            method: ``"diag"`` or ``"lanczos"``.
            rank: (``"lanczos"``, required) the number of leading eigenpairs, 1 to k.
            steps: (``"lanczos"``) Lanczos iterations, ``rank`` to k.
            probes: (``"diag"``) estimate the diagonal from this many random probes
                instead of computing it exactly.
            key: a ``jax.random`` key for the Lanczos start vector and the probes
                (default: ``jax.random.key(0)``, reproducible).
            data: the data to evaluate the information on (default: the fit's own).

        Returns:
            An :class:`mlejax.ApproxStderr` (``stderr`` a pytree like ``params``).

        Raises:
            ValueError: an unknown method; ``rank`` missing or outside 1..k; ``steps``
                outside rank..k; an option of the other method; a result without its
                model or with streamed data.

        Examples:
            >>> import jax, jax.numpy as jnp, numpy as np, mlejax as mj
            >>> x = np.array([0.5, 1.5, 2.0, 3.0])
            >>> ll = lambda p, x: jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], 1.0))
            >>> res = mj.fit(ll, {"mu": 0.0}, x, cov=None)
            >>> approx = res.stderr_approx("lanczos", rank=1)
            >>> round(float(approx.stderr["mu"]), 6), approx.approximation[:13]
            (0.5, 'APPROXIMATION')
        """
        _check_single_fit(self, "stderr_approx()")
        return stderr_approx(self, method, rank=rank, steps=steps, probes=probes, key=key, data=data)

    def with_cov(self, cov_type: str, *, clusters=None, expected_information=None) -> FitResult:
        """The same fit with another covariance (and standard errors) attached.

        ``cov_type``:

        - ``"observed"``, ``"opg"``, ``"sandwich"``, ``"cluster"`` (give
          ``clusters``): as in :func:`mlejax.fit`; per-observation scores are the
          gradients of ``loglik`` on the data sliced to one observation (leaves
          sharing the leading ``nobs`` axis), so the total log-likelihood must be
          their sum.
        - ``"expected"``: the inverse of the expected (Fisher) information, which
          you supply as ``expected_information(params, data) -> (k, k)`` array: the
          total over observations, natural scale, free parameters in the order of
          ``names``.
        - ``"pinv"``: the documented fallback when the observed information is
          singular or not positive definite (standard errors NaN): a
          pseudo-inverse (the Moore-Penrose inverse of the correlation-scaled
          information, scaled back; eigenvalues below ``1e4 * eps * max`` count as
          zero). Labelled ``"pinv"`` in
          ``cov_type`` and the summary. Variances of parameters along a
          non-identified direction are then only the minimum-norm choice, not
          sampling variances; standard errors of identified combinations (via
          ``delta``) are meaningful. Negative variances (an indefinite Hessian) give
          NaN standard errors.

        The diagnostic flags (which describe the observed information) are kept.
        """
        _check_single_fit(self, "with_cov()")
        known = COV_TYPES + ("expected", "pinv")
        if cov_type not in known:
            raise ValueError(f"cov_type={cov_type!r} is not known; use one of {known}.")
        if expected_information is not None and cov_type != "expected":
            raise ValueError("expected_information= is only used with cov_type='expected'.")
        if clusters is not None and cov_type != "cluster":
            raise ValueError("clusters= is only used with cov_type='cluster'.")
        if self.information is None:
            raise ValueError(
                f"this fit has no information matrix (cov={self.cov_type!r}: none was formed); refit "
                "with cov='observed', or use res.stderr_for([...]) and res.delta(fn) (Hessian-free)."
            )
        info = jnp.asarray(self.information)
        k = self.nparams
        if cov_type == "pinv":
            cov = pinv_information(info)
        elif cov_type == "expected":
            if not callable(expected_information):
                raise TypeError(
                    "cov_type='expected' needs expected_information=fn, with "
                    "fn(params, data) -> the (k, k) expected information of the free "
                    f"parameters in the order {self.names}."
                )
            fisher = jnp.asarray(expected_information(self.params, self._data), info.dtype)
            if fisher.shape != (k, k):
                raise ValueError(
                    f"expected_information returned shape {fisher.shape}; it must return a "
                    f"({k}, {k}) matrix over the free parameters {self.names}."
                )
            cov = analyse_information(0.5 * (fisher + fisher.T)).inverse
        else:
            codes = n_clusters = None
            if cov_type == "cluster":
                codes, n_clusters = cluster_codes(clusters, self.nobs, "cluster")
            if getattr(self._loglik, "log_prior", None) is not None:
                raise ValueError("a MAP fit (log_prior) only has cov_type 'observed' or 'pinv'.")
            scores = None
            if cov_type != "observed":
                require_additive(self, f"with_cov({cov_type!r})")
                scores = np.asarray(checked_scores_jit(
                    dyn=self._dyn, data=self._data, phi=self._phi(np), loglik=self._loglik, spec=self._spec,
                    mask=self._obs.mask))
            # k x k linear algebra on the host (eagerly in jnp, each op would compile on its own)
            cov = jnp.asarray(covariance(cov_type, analyse_information(np.asarray(info), np), scores, codes,
                                         n_clusters, xp=np))
        var = np.diag(np.asarray(cov))
        se_flat = jnp.asarray(np.where(var >= 0, np.sqrt(np.abs(var)), np.nan))
        dyn = self._dyn
        nan_dyn = dyn._replace(values=tuple(jnp.full_like(v, jnp.nan) for v in dyn.values))
        stderr = self._spec.from_natural_flat(se_flat, nan_dyn)
        return dataclasses.replace(self, cov=cov, stderr=stderr, cov_type=cov_type)

    # -- export ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The fit as plain Python numbers (JSON-friendly): per-parameter dicts keyed
        by ``names`` (``params``, ``stderr``), the fit statistics, status and flags."""
        _check_single_fit(self, "to_dict()")
        phi = np.asarray(self._phi(), dtype=float)
        se = stderr_flat(self)
        f = lambda v: float(v)  # noqa: E731
        order = display_order(self)
        return {
            "params": {self.names[i]: f(phi[i]) for i in order},
            "stderr": {self.names[i]: f(se[i]) for i in order},
            "cov": None if self.cov is None else np.asarray(self.cov, dtype=float).tolist(),
            "names": list(self.names),
            "loglik": f(self.loglik),
            "nobs": self.nobs,
            "nparams": self.nparams,
            "aic": f(self.aic),
            "aicc": checked_or_none(lambda: f(self.aicc)),
            "bic": checked_or_none(lambda: f(self.bic)),
            "converged": bool(self.converged),
            "status": Status(int(self.status)).name,
            "message": self.message,
            "n_iter": int(self.n_iter),
            "grad_norm": f(self.grad_norm),
            "method": self.method,
            "cov_type": self.cov_type,
            "flags": {
                "hessian_not_negdef": bool(self.hessian_not_negdef),
                "not_identified": bool(self.not_identified),
                "ill_conditioned": bool(self.ill_conditioned),
                "condition_number": f(self.condition_number),
                "params_at_bound": [
                    n for n, b in zip(self.names, np.asarray(self.params_at_bound)) if b
                ],
            },
        }

    def to_dataframe(self, level: float = 0.95):
        """The coefficient table as a ``pandas.DataFrame`` (one row per free parameter:
        ``coef``, ``std err``, ``z``, ``P>|z|`` and the Wald interval at ``level``).
        pandas is optional: installed only if you use this."""
        _check_single_fit(self, "to_dataframe()")
        _check_level(level)
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - exercised with pandas missing
            raise ImportError(
                "FitResult.to_dataframe() needs pandas, which mlejax does not require; "
                "install it with `pip install pandas`, or use to_dict()."
            ) from e
        from ._summary import coef_table

        rows, lo_label, hi_label = coef_table(self, level)
        cols = ["coef", "std err", "z", "P>|z|", lo_label, hi_label]
        return pd.DataFrame([r[1:] for r in rows], index=[r[0] for r in rows], columns=cols)

    def wald_test(self, r, q=None):
        """Wald test of the linear restrictions ``R theta = q`` over the free parameters
        (in the order of ``names``). Returns statistic, df, p-value (chi-squared)."""
        from ._compare import wald_test

        return wald_test(self, r, q)

    def summary(self, level: float = 0.95) -> str:
        """A statsmodels-style table: fit statistics, covariance type, the
        coefficients with Wald standard errors, z, p-values and intervals at
        ``level``, the diagnostic flags in words and the status message."""
        from ._summary import summary_text

        _check_level(level)
        _check_single_fit(self, "summary()")
        return summary_text(self, level)

    def _repr_html_(self) -> str:
        from ._summary import summary_html

        return summary_html(self)

    def __str__(self) -> str:
        if _is_concrete(self.loglik) and jnp.ndim(self.loglik) == 0:
            return self.summary()
        return f"FitResult(names={self.names}, batched/traced)"

    __repr__ = __str__


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def nan_covariance(res, **changes):
    """``res`` with NaN covariance and standard errors and ``converged`` recomputed
    from the (possibly changed) status: for numbers that cannot be trusted."""
    flat = jnp.full((res.nparams,), jnp.nan, jnp.result_type(res.loglik))
    status = changes.pop("status", res.status)
    return dataclasses.replace(
        res, cov=jnp.full_like(res.cov, jnp.nan), stderr=stderr_tree(res, flat),
        status=status, converged=jnp.asarray(int(status) == Status.SUCCESS), **changes,
    )


def _to_host(tree):
    """JAX arrays as plain Python floats (0-d) or numpy arrays."""
    def conv(a):
        a = np.asarray(a)
        return float(a) if a.ndim == 0 else a

    return jax.tree_util.tree_map(conv, tree)


def _check_single_fit(res, what):
    if not _is_concrete(res.loglik) or jnp.ndim(res.loglik) != 0:
        raise ValueError(
            f"{what} needs a single concrete fit, but this FitResult holds a stack of fits "
            "(from jax.vmap) or is traced. Use mj.fit_batch, whose result has summary() and "
            "res[i], or take fit i out with jax.tree_util.tree_map(lambda a: a[i], res), "
            "outside jit."
        )


def _check_level(level):
    if isinstance(level, (str, bytes, bool)) or not isinstance(level, (int, float, np.number)):
        raise TypeError(f"level={level!r} must be a number strictly between 0 and 1 (e.g. 0.95).")
    if not (0.0 < float(level) < 1.0):
        raise ValueError(f"level={level} must be strictly between 0 and 1 (e.g. 0.95).")


META_FIELDS = ("names", "nobs", "method", "cov_type", "_spec", "_loglik", "_obs", "rough_params",
               "diagnosis", "starts", "stochastic")
jax.tree_util.register_dataclass(
    FitResult,
    data_fields=[f.name for f in dataclasses.fields(FitResult) if f.name not in META_FIELDS],
    meta_fields=list(META_FIELDS),
)
