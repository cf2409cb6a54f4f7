"""Sphinx configuration: MyST Markdown pages, the API reference from the docstrings.

Build:  sphinx-build -W -b html docs docs/_build/html   (``-W``: warnings are errors)
"""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "mlejax"
author = "mlejax developers"
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
html_theme = "alabaster"
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_default_options = {"members": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]
