"""The old import path `infusion.demo.clinic`, kept while ui/, pages/, tests/app, tests/db and bench/ use it.

The generator that lived here is split into the modules of `infusion.demo`;
new code should import from `infusion.demo` itself.
"""

import sys

from infusion.demo import (
    DEMO_PASSWORD,
    DIAGNOSES,
    STAFF,
    DemoOptions,
    DemoRefused,
    DemoResult,
    load_demo,
    load_demo_if_empty,
    main,
)

__all__ = [
    "DEMO_PASSWORD",
    "DIAGNOSES",
    "STAFF",
    "DemoOptions",
    "DemoRefused",
    "DemoResult",
    "load_demo",
    "load_demo_if_empty",
    "main",
]

if __name__ == "__main__":
    sys.exit(main())
