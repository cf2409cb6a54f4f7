"""Shared by the examples: the size switch and where plots go.

``MLEJAX_EXAMPLES_SMALL=1`` runs every example at a small size (what CI does);
plots are written to ``MLEJAX_EXAMPLES_OUT`` (default: a temporary directory) when
matplotlib is installed."""

import os
import tempfile

SMALL = os.environ.get("MLEJAX_EXAMPLES_SMALL", "") not in ("", "0")


def size(full, small):
    return small if SMALL else full


def out_path(name):
    d = os.environ.get("MLEJAX_EXAMPLES_OUT") or tempfile.mkdtemp(prefix="mlejax-examples-")
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, name)


def have_matplotlib():
    try:
        import matplotlib

        matplotlib.use("Agg")
    except ImportError:
        print("(matplotlib not installed: plots skipped; pip install 'mlejax[plot]')")
        return False
    return True
