"""``python -m optimize``: see :mod:`optimize.cli`."""

import sys

from optimize.cli import main

sys.exit(main())
