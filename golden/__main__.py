"""Entry point of ``python -m golden``."""

import sys

from .cli import main

sys.exit(main())
