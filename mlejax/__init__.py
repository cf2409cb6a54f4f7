"""mlejax: maximum likelihood on JAX.

Write a log-likelihood as a pure JAX function; ``mj.fit`` maximises it with exact
derivatives and returns estimates with standard errors, tests and intervals.
mlejax never changes ``jax.config``: enable float64 yourself for inference with
``jax.config.update("jax_enable_x64", True)``.
"""

from importlib.metadata import PackageNotFoundError, version as _version

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
from ._modelfit import ModelResult as ModelResult
from ._profile import Profile as Profile
from ._result import DeltaResult as DeltaResult, FitResult as FitResult
from ._status import (
    ConvergenceWarning as ConvergenceWarning,
    HessianWarning as HessianWarning,
    MLEJaxWarning as MLEJaxWarning,
    PrecisionWarning as PrecisionWarning,
    Status as Status,
)
from .backends._batch import BatchFitResult as BatchFitResult, fit_batch as fit_batch
from .dist import fit_dist as fit_dist
from .hmm import HMM as HMM, GaussianHMM as GaussianHMM, HMMResult as HMMResult
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
