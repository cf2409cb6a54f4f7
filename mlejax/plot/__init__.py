"""Plots of fits (matplotlib, the optional extra ``plot``; imported when a plot is drawn).

Every function draws on ``ax=`` (a matplotlib Axes; a new figure when omitted) and
returns the Axes (or, for several panels, an array of Axes), so plots compose with
the user's own figures:

- :func:`profile`: profile deviance of one parameter with the likelihood-ratio
  cut-off, the profile interval and the Wald parabola;
- :func:`profile_2d`: the joint profile-likelihood confidence region of two;
- :func:`density`, :func:`qq`, :func:`pp`, :func:`dist_diagnostics`: ``fit_dist``
  diagnostics;
- :func:`mixture`: a mixture's density (1-D) or contours with the points coloured
  by responsibility (2-D);
- :func:`trace`: the log-likelihood per iteration (``mlejax.progress.Recorder``);
- :func:`bootstrap`: the bootstrap distribution of a parameter with its intervals;
- :func:`hmm_states`: a series coloured by its HMM states, with the posterior probabilities.
"""

from ._common import save as save
from ._dist import density as density, dist_diagnostics as dist_diagnostics, pp as pp, qq as qq
from ._inference import (
    bootstrap as bootstrap,
    hmm_states as hmm_states,
    profile as profile,
    profile_2d as profile_2d,
    trace as trace,
)
from ._mixture import mixture as mixture

__all__ = ["profile", "profile_2d", "density", "qq", "pp", "dist_diagnostics", "mixture", "trace", "bootstrap",
           "hmm_states", "save"]
