"""``python -m pyapp``: the clinvec command line."""

import sys

from .cli import main

sys.exit(main())
