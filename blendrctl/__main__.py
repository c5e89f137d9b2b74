"""``python -m blendrctl ...``: the ``blendr`` command (how tests and the demo start nodes as processes)."""

import sys

from blendrctl.cli import main

sys.exit(main())
