"""Matching a transfer's students to local ones: blocking look-ups in storage, decisions in protocol.

A constant number of batched queries per ~500 students (candidates, SIS ids, state ids, and former SIS ids
with the students they now name), then pure decisions; nothing here queries per student. A receiving SIS id
that is a local student's former number (the SIS renumbered them since the sender learnt it) matches the
student under their current number, saying so in the reasons.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlite_utils

from node.gc_pause import gc_paused
from protocol.matching import (
    IncomingStudent,
    MatchOutcome,
    apply_batch_rules,
    decide,
    find_incoming_duplicates,
)
from storage import match_index, students


def match_students(db: sqlite_utils.Database, incoming: Sequence[IncomingStudent]) -> list[MatchOutcome]:
    # The cyclic garbage collector would walk every candidate record again and again as the working set
    # grows (time superlinear in incoming students); nothing built here is cyclic, so pause it.
    with gc_paused():
        return _match(db, incoming)


def _match(db: sqlite_utils.Database, incoming: Sequence[IncomingStudent]) -> list[MatchOutcome]:
    """One outcome per incoming student, in order (see protocol.matching for the rules)."""
    found = match_index.candidates(db, incoming)
    by_sis_id = match_index.lookup_sis_ids(db, (s.receiving_sis_id for s in incoming if s.receiving_sis_id))
    # A receiving SIS id no student holds may be one's former number (storage.students.renumber): the sender's
    # copy predates the renumbering. One more query, and one for those students, only when some are.
    formers = students.former(
        db,
        (s.receiving_sis_id for s in incoming if s.receiving_sis_id and s.receiving_sis_id not in by_sis_id),
    )
    if formers:
        by_sis_id.update(match_index.lookup_sis_ids(db, (f.current_sis_id for f in formers.values())))
    by_former = {old: (f.current_sis_id, f.renumbered_at) for old, f in formers.items()}
    by_state_id = match_index.lookup_state_ids(db, (s.state_id for s in incoming if s.state_id))
    outcomes = [
        decide(
            student,
            found[i],
            receiving_sis_lookup=by_sis_id,
            state_id_lookup=by_state_id,
            former_sis_lookup=by_former,
        )
        for i, student in enumerate(incoming)
    ]
    return apply_batch_rules(incoming, outcomes, find_incoming_duplicates(incoming))
