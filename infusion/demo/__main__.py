"""`python -m infusion.demo`."""

import sys

from infusion.demo.cli import main

sys.exit(main())
