"""``python -m demo``: the same as ``locker-demo``."""

import sys

from demo.cli import main

sys.exit(main())
