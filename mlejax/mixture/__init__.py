"""Mixture models fitted by :func:`mlejax.em`: component families and helpers.

``mj.GaussianMixture``, ``mj.Mixture``, ``mj.em`` are also at the top level. A
component of ``mj.Mixture(family, n_components)`` is any :mod:`mlejax.dist` family;
the names ``Normal``, ``Poisson``, ``Exponential``, ``Bernoulli``, ``Weibull`` and
``StudentT`` here are those families (kept for earlier code).
"""

from ._em import em as em, em_loop as em_loop, em_pure as em_pure
from ._gmm import GaussianMixture as GaussianMixture
from ._mixture import (
    Bernoulli as Bernoulli,
    BernoulliMixture as BernoulliMixture,
    Exponential as Exponential,
    ExponentialMixture as ExponentialMixture,
    Mixture as Mixture,
    Normal as Normal,
    Poisson as Poisson,
    PoissonMixture as PoissonMixture,
    StudentT as StudentT,
    Weibull as Weibull,
)
from ._result import MixtureResult as MixtureResult
from ._select import ComponentSelection as ComponentSelection, select_components as select_components
