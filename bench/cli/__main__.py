"""``python -m bench.cli``: the same as the ``backprop-bench`` command."""

import sys

from bench.cli import main

sys.exit(main())
