"""Test session set-up: float64 for inference, once for the whole session."""

import jax

jax.config.update("jax_enable_x64", True)
