"""Distribution families: the one description of a density in mlejax.

A family object is what :func:`fit_dist` fits, what a mixture mixes, what a GLM
response is. A new family goes in this room (subclass :class:`Family`).
"""

from ._families import (
    FAMILIES as FAMILIES,
    Bernoulli as Bernoulli,
    Beta as Beta,
    Binomial as Binomial,
    Categorical as Categorical,
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
    StudentT as StudentT,
    Weibull as Weibull,
    fit_dist as fit_dist,
    nb2_logpmf as nb2_logpmf,
)

__all__ = ["fit_dist", "Family", *[f.__name__ for f in FAMILIES]]
