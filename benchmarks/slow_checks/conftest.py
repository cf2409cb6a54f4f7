"""The slow statistical checks run with float64, as the test suite does."""

import jax

jax.config.update("jax_enable_x64", True)
