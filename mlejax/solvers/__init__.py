"""Solvers: interchangeable optimisers run by the one driver loop.

Every solver minimises ``-loglik`` on the unconstrained scale through
:func:`mlejax.solvers.minimise` (one ``lax.while_loop``). A new solver goes in this
room as a module of its own.
"""

from ._driver import DriverState as DriverState, minimise as minimise
from ._solvers import (
    LBFGS as LBFGS,
    Newton as Newton,
    Objective as Objective,
    OptaxAscent as OptaxAscent,
    make_solver as make_solver,
)
