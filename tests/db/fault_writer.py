"""A writer process for the fault tests (tests/db/test_faults.py); not a test module.

    python -m tests.db.fault_writer <database url> <token prefix> <session id>[,<session id>…]

Records vitals through the real service in an endless loop, round-robin over the given sessions (already
walked to "infusing"), each with a unique client token. A token is printed (one line, flushed) only after
`record_vitals` returned: a printed token is an acknowledged save. The test kills this process with SIGKILL.
"""

from __future__ import annotations

import itertools
import sys

from db.engine import Database, make_engine
from infusion.accounts.actor import Actor
from infusion.services.entries import record_vitals
from tests.helpers import normal_vitals


def main(url: str, prefix: str, session_ids: list[int]) -> None:
    db = Database(make_engine(url))
    nurse = Actor(None, "Fault Writer", "nurse")
    for n in itertools.count(1):
        token = f"{prefix}-{n}"
        session_id = session_ids[n % len(session_ids)]
        record_vitals(db, nurse, session_id, normal_vitals(pulse=60 + n % 40), client_token=token)
        sys.stdout.write(token + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], [int(x) for x in sys.argv[3].split(",")])
