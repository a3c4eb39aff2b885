"""``python -m SpinePlannerLib.cli``: the ``spineplan`` command."""

import sys

from SpinePlannerLib.cli.main import main

sys.exit(main())
