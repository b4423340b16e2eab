"""`python -m infusion.accounts`."""

import sys

from infusion.accounts.cli import main

sys.exit(main())
