"""``python -m mlejax``: the command line (see :mod:`mlejax._cli`)."""

import sys

from ._cli import main

sys.exit(main())
