"""Hidden Markov models fitted by Baum-Welch (:func:`mlejax.em`).

``mj.HMM(emission, n_states)`` takes any :mod:`mlejax.dist` family as its emission;
``mj.GaussianHMM(n_states, covariance_type=...)`` has Gaussian emissions with the four
covariance structures of ``mj.GaussianMixture``; ``mj.GMMHMM(n_states, n_mix, ...)`` a
Gaussian mixture per state.
"""

from ._model import GMMHMM as GMMHMM, HMM as HMM, GaussianHMM as GaussianHMM, hmm_pure as hmm_pure
from ._result import HMMResult as HMMResult

__all__ = ["HMM", "GaussianHMM", "GMMHMM", "HMMResult", "hmm_pure"]
