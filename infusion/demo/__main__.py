"""`python -m infusion.demo`."""

import sys

from infusion.demo.clinic import main

sys.exit(main())
