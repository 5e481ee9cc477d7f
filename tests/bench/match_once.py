"""One timed match for goal 4, in a process of its own: `python -m tests.bench.match_once DB INCOMING`.

INCOMING is a pickle of a list of protocol.matching.IncomingStudent. Prints one JSON line: the seconds
``node.matching.match_students`` took (caches cold, connection fresh) and the local SIS id proposed for
each incoming student (None when new).
"""

from __future__ import annotations

import json
import pickle
import sys
import time
from pathlib import Path


def main() -> None:
    from node.matching import match_students
    from storage.database import open_database

    database, incoming_path = Path(sys.argv[1]), Path(sys.argv[2])
    incoming = pickle.loads(incoming_path.read_bytes())
    db = open_database(database, migrate=False)
    try:
        started = time.perf_counter()
        outcomes = match_students(db, incoming)
        elapsed = time.perf_counter() - started
    finally:
        db.close()
    print(json.dumps({"seconds": elapsed, "local_sis_ids": [o.local_sis_id for o in outcomes]}))


if __name__ == "__main__":
    sys.path[:0] = [str(Path(__file__).resolve().parents[2])]
    main()
