"""Solvers: interchangeable optimisers run by the one driver loop.

Every solver is an instance of :class:`Solver` (the documented protocol) and
minimises ``-loglik`` on the unconstrained scale through :func:`minimise`: one
``lax.while_loop`` in compiled code, or a host loop around the model's compiled
derivative kernel for a single fit. ``mj.fit(..., method=...)`` accepts any
instance. A new solver goes in this room as a module of its own.
"""

from ._base import (
    Derivs as Derivs,
    HostObjective as HostObjective,
    Objective as Objective,
    ProposeAccept as ProposeAccept,
    Solver as Solver,
    Step as Step,
    secant_decrement as secant_decrement,
)
from ._driver import DriverState as DriverState, minimise as minimise
from ._lm import LevenbergMarquardt as LevenbergMarquardt
from ._newton import Newton as Newton
from ._solvers import LBFGS as LBFGS, OptaxAscent as OptaxAscent, make_solver as make_solver
from ._trust import TrustRegion as TrustRegion
