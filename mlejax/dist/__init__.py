"""Distribution families: the one description of a density in mlejax.

A family object is what :func:`fit_dist` fits, what ``mj.Mixture(family, k)``
mixes, what an ``mj.glm`` response and an HMM emission are. A new family goes in
this room (subclass :class:`Family`); a user's own family is a subclass too, or
:class:`Custom` (a log-density and starting values with constraint markers).
"""

from ._families import (
    FAMILIES as FAMILIES,
    Bernoulli as Bernoulli,
    Beta as Beta,
    Binomial as Binomial,
    Categorical as Categorical,
    Custom as Custom,
    Exponential as Exponential,
    Family as Family,
    Gamma as Gamma,
    Geometric as Geometric,
    Laplace as Laplace,
    LogNormal as LogNormal,
    Multinomial as Multinomial,
    MultivariateNormal as MultivariateNormal,
    NegativeBinomial as NegativeBinomial,
    Normal as Normal,
    Poisson as Poisson,
    Renamed as Renamed,
    StudentT as StudentT,
    Weibull as Weibull,
    fit_dist as fit_dist,
    nb2_logpmf as nb2_logpmf,
)

__all__ = ["fit_dist", "Family", "Custom", "Renamed", *[f.__name__ for f in FAMILIES]]
