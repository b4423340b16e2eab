"""`python -m infusion.exports`: the quality exports from the command line."""

import sys

from infusion.exports.cli import main

sys.exit(main())
