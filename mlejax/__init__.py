"""mlejax: maximum likelihood on JAX.

Write a log-likelihood as a pure JAX function; ``mj.fit`` maximises it with exact
derivatives and returns estimates with standard errors, tests and intervals.
mlejax never changes ``jax.config``: enable float64 yourself for inference with
``jax.config.update("jax_enable_x64", True)``.

The public names are imported on first use (PEP 562 ``__getattr__``): ``import
mlejax`` itself does not import JAX, so the ``mlejax`` command line answers
``--help`` and bad input without it. ``mj.fit`` and every other name behave as if
imported eagerly.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version as _version
from typing import TYPE_CHECKING

# public name -> the module that defines it (a submodule name itself for ``mj.dist`` etc.)
_EXPORTS = {
    **{m: f".{m}" for m in ("dist", "hmm", "mixture", "plot", "priors", "progress", "stream")},
    **dict.fromkeys(("BootstrapResult", "bootstrap"), "._bootstrap"),
    "enable_compilation_cache": "._cache",
    **dict.fromkeys(("TestResult", "lrt", "wald_test"), "._compare"),
    **dict.fromkeys(("Bounded", "Fixed", "Positive"), "._constraints"),
    "fit": "._fit",
    "clear_caches": "._jit",
    "ApproxStderr": "._hessapprox",
    "ModelResult": "._modelfit",
    "Profile": "._profile",
    **dict.fromkeys(("DeltaResult", "FitResult"), "._result"),
    **dict.fromkeys(("LocalOptimaWarning", "Maximum", "StartsSummary"), "._starts"),
    **dict.fromkeys(
        ("ConvergenceWarning", "HessianWarning", "MLEJaxWarning", "PrecisionWarning", "Status"), "._status"
    ),
    **dict.fromkeys(("BatchFitResult", "fit_batch"), ".backends._batch"),
    "fit_dist": ".dist",
    **dict.fromkeys(("HMM", "GaussianHMM", "GMMHMM", "HMMResult"), ".hmm"),
    **dict.fromkeys(("BatchMixtureResult", "em_batch"), ".mixture._batch"),
    "em": ".mixture._em",
    "GaussianMixture": ".mixture._gmm",
    **dict.fromkeys(("BernoulliMixture", "ExponentialMixture", "Mixture", "PoissonMixture"), ".mixture._mixture"),
    "MixtureResult": ".mixture._result",
    "select_components": ".mixture._select",
    **dict.fromkeys(("PerfectSeparationWarning", "glm"), ".models._glm"),
    "curve_fit": ".models._nls",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mlejax' has no attribute {name!r}")
    importlib.import_module(".backends", __name__)  # registers the runner of mj.fit(starts=)
    mod = importlib.import_module(module, __name__)
    value = mod if module == f".{name}" else getattr(mod, name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and IDEs: the eager imports the table above stands for
    from . import (
        dist as dist,
        hmm as hmm,
        mixture as mixture,
        plot as plot,
        priors as priors,
        progress as progress,
        stream as stream,
    )
    from ._bootstrap import BootstrapResult as BootstrapResult, bootstrap as bootstrap
    from ._cache import enable_compilation_cache as enable_compilation_cache
    from ._compare import TestResult as TestResult, lrt as lrt, wald_test as wald_test
    from ._constraints import Bounded as Bounded, Fixed as Fixed, Positive as Positive
    from ._fit import fit as fit
    from ._hessapprox import ApproxStderr as ApproxStderr
    from ._jit import clear_caches as clear_caches
    from ._modelfit import ModelResult as ModelResult
    from ._profile import Profile as Profile
    from ._result import DeltaResult as DeltaResult, FitResult as FitResult
    from ._starts import LocalOptimaWarning as LocalOptimaWarning, Maximum as Maximum, StartsSummary as StartsSummary
    from ._status import (
        ConvergenceWarning as ConvergenceWarning,
        HessianWarning as HessianWarning,
        MLEJaxWarning as MLEJaxWarning,
        PrecisionWarning as PrecisionWarning,
        Status as Status,
    )
    from .backends._batch import BatchFitResult as BatchFitResult, fit_batch as fit_batch
    from .dist import fit_dist as fit_dist
    from .hmm import GMMHMM as GMMHMM, HMM as HMM, GaussianHMM as GaussianHMM, HMMResult as HMMResult
    from .mixture._batch import BatchMixtureResult as BatchMixtureResult, em_batch as em_batch
    from .mixture._em import em as em
    from .mixture._gmm import GaussianMixture as GaussianMixture
    from .mixture._mixture import (
        BernoulliMixture as BernoulliMixture,
        ExponentialMixture as ExponentialMixture,
        Mixture as Mixture,
        PoissonMixture as PoissonMixture,
    )
    from .mixture._result import MixtureResult as MixtureResult
    from .mixture._select import select_components as select_components
    from .models._glm import PerfectSeparationWarning as PerfectSeparationWarning, glm as glm
    from .models._nls import curve_fit as curve_fit

try:
    __version__ = _version("mlejax")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"
