"""``python -m rtai`` is the ``rtai`` command."""

import sys

from rtai.cli import main

sys.exit(main())
