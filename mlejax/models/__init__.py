"""Ready-made models built on :func:`mlejax.fit`: GLMs and nonlinear least squares.

A new model goes in this room; its response distribution is an ``mlejax.dist`` family.
"""

from ._glm import PerfectSeparationWarning as PerfectSeparationWarning, glm as glm
from ._nls import curve_fit as curve_fit
