import json

import pytest

from node.home import Node
from storage import audit
from storage.database import write_transaction
from storage.errors import AuditChainBroken


def _fill(node: Node, n: int) -> None:
    with write_transaction(node.db):
        for i in range(n):
            audit.append(node.db, at=f"2026-01-01T00:00:{i:02d}Z", actor="t", action="test", subject=str(i))


def test_chain_verifies_and_counts(node: Node) -> None:
    before = audit.verify_chain(node.db)
    _fill(node, 5)
    assert audit.verify_chain(node.db) == before + 5


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3",
        "UPDATE audit_log SET details = '{\"x\":1}' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 4",
        "DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)",
    ],
)
def test_edit_or_delete_is_detected(node: Node, tamper: str) -> None:
    _fill(node, 6)
    node.db.execute(tamper)
    with pytest.raises(AuditChainBroken):
        audit.verify_chain(node.db)


def test_entries_filter_by_subject(node: Node) -> None:
    _fill(node, 3)
    assert [e.subject for e in audit.entries(node.db, subject="1")] == ["1"]


def test_every_broken_entry_is_named_not_only_the_first(node: Node) -> None:
    # An edit found and left in place (the log cannot be rewritten without breaking it) must not hide a later
    # one: each is named, with its number.
    _fill(node, 8)
    first = audit.verify_chain(node.db) - 7
    node.db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = ?", [first + 1])
    node.db.execute("DELETE FROM audit_log WHERE seq IN (?, ?)", [first + 4, first + 5])
    node.db.execute("UPDATE audit_log SET subject = 'x' WHERE seq = ?", [first + 7])
    with pytest.raises(AuditChainBroken) as caught:
        audit.verify_chain(node.db)
    message = caught.value.message
    assert f"audit entry {first + 1} was modified" in message
    assert f"audit entries {first + 4}..{first + 5} are missing" in message
    assert f"audit entry {first + 7} was modified" in message
    assert f"entry {first + 6} does not follow" not in message  # the gap already says it
    assert [b.seq for b in audit.breaks(node.db)] == [first + 1, first + 4, first + 7]


def _rewrite_from(node: Node, seq: int, actor: str) -> None:
    """What someone who can write the database can do: edit an entry and recompute every hash after it."""
    node.db.execute("UPDATE audit_log SET actor = ? WHERE seq = ?", [actor, seq])
    rows = node.db.execute("SELECT seq, at, actor, action, subject, details FROM audit_log WHERE seq >= ? "
                           "ORDER BY seq", [seq]).fetchall()  # fmt: skip
    prev = node.db.execute("SELECT entry_hash FROM audit_log WHERE seq = ?", [seq - 1]).fetchone()[0]
    for s, at, who, action, subject, details in rows:
        digest = audit._entry_hash(prev, s, at, who, action, subject, details)
        node.db.execute("UPDATE audit_log SET prev_hash = ?, entry_hash = ? WHERE seq = ?", [prev, digest, s])
        prev = digest
    node.db.execute("UPDATE settings SET value = json_object('seq', ?, 'hash', ?) WHERE key = 'audit.head'",
                    [rows[-1][0], prev])  # fmt: skip


def test_a_log_rewritten_since_a_backup_is_found_against_the_backup(node: Node, tmp_path) -> None:
    import sqlite3

    _fill(node, 4)
    copy = tmp_path / "backup.db"
    node.db.conn.execute("VACUUM INTO ?", [str(copy)])
    _fill(node, 2)
    with sqlite3.connect(copy) as backup:  # the live log extends the backup's: fine
        assert audit.verify_against(node.db, backup) == audit.verify_chain(node.db) - 2
        last = audit.verify_chain(node.db)
        _rewrite_from(node, last - 3, "mallory")
        assert audit.verify_chain(node.db) == last  # a consistent rewrite: the chain alone cannot tell
        with pytest.raises(AuditChainBroken) as caught:
            audit.verify_against(node.db, backup)
        assert f"audit entry {last - 3} differs from the backup's" in caught.value.message
        node.db.execute("DELETE FROM audit_log WHERE seq > ?", [last - 5])  # cut back, before the backup's end
        node.db.execute("UPDATE settings SET value = json_object('seq', ?, 'hash', (SELECT entry_hash FROM "
                        "audit_log WHERE seq = ?)) WHERE key = 'audit.head'", [last - 5, last - 5])  # fmt: skip
        with pytest.raises(AuditChainBroken) as caught:
            audit.verify_against(node.db, backup)
        assert f"the backup's audit log goes on to entry {last - 2}; this one ends at entry {last - 5}" in (
            caught.value.message
        )


def test_a_disclosure_deleted_from_the_record_is_found_through_the_audit_log(node: Node) -> None:
    # The record of disclosures is an ordinary table; the audit entry of each transfer, in the chain, names
    # the students it disclosed, so a row deleted to hide a disclosure from a parent shows.
    with write_transaction(node.db):
        for transfer, students in (("T1", ["100001", "100002"]), ("T2", ["100003"])):
            entry = audit.append(node.db, at="2026-01-01T00:00:00Z", actor="coord", action="transfer.send",
                                 subject=transfer, details={"to": "b.example.org", "students": students})  # fmt: skip
            for sis_id in students:
                node.db.execute("INSERT INTO disclosures (disclosure_id, student_sis_id, transfer_id, to_domain, "
                                "to_name, records, disclosed_by, at, purpose) VALUES (?, ?, ?, 'b.example.org', 'B',"
                                " '[]', 'coord', '2026-01-01T00:00:00Z', 'enrolment')",
                                [transfer + sis_id, sis_id, transfer])  # fmt: skip
    first = entry.seq - 1
    assert audit.breaks(node.db) == []
    node.db.execute("DELETE FROM disclosures WHERE disclosure_id = 'T1100002'")
    node.db.execute("INSERT INTO disclosures (disclosure_id, student_sis_id, transfer_id, to_domain, to_name, "
                    "records, disclosed_by, at, purpose) VALUES ('F', '100009', 'T9', 'c.example.org', 'C', '[]', "
                    "'coord', '2026-01-01T00:00:00Z', 'made up')")  # fmt: skip
    with pytest.raises(AuditChainBroken) as caught:
        audit.verify_chain(node.db)
    message = caught.value.message
    assert (f"the record of disclosures holds 1 of the 2 students audit entry {first} says transfer T1 "
            "disclosed") in message
    assert "the record of disclosures names transfer T9, which no audit entry says was sent" in message


def _disclosure(node: Node, transfer: str, sis_id: str, records: str = "[]", to: str = "b.example.org") -> None:
    node.db.execute("INSERT INTO disclosures (disclosure_id, student_sis_id, transfer_id, to_domain, to_name, "
                    "records, disclosed_by, at, purpose) VALUES (?, ?, ?, ?, 'B', ?, 'coord', '2026-01-01T00:00:00Z', "
                    "'enrolment')",
                    [transfer + sis_id, sis_id, transfer, to, records])  # fmt: skip


def test_a_disclosure_follows_its_student_renumbered_and_an_entry_from_before_digests_still_checks_it(
    node: Node,
) -> None:
    # T1 went before the SIS renumbered 100001 to 200001 and then gave 100001 to another child, to whom T2 went:
    # each row names its child's number now, which the entries reach through the student.renumbered entries.
    # The entries are as a version before the digests wrote them (to, students, records): still checked.
    record = json.dumps([{"kind": "demographics", "id": "", "title": ""}, {"kind": "document", "id": "D1",
                                                                            "title": "IEP"}])  # fmt: skip
    with write_transaction(node.db):
        audit.append(node.db, at="2026-01-01T00:00:00Z", actor="coord", action="transfer.send", subject="T1",
                     details={"to": "b.example.org", "students": ["100001", "100002"], "records": 1})  # fmt: skip
        audit.append(node.db, at="2026-01-02T00:00:00Z", actor="admin", action="student.renumbered",
                     subject="200001", details={"from": "100001", "to": "200001"})  # fmt: skip
        audit.append(node.db, at="2026-01-03T00:00:00Z", actor="coord", action="transfer.send", subject="T2",
                     details={"to": "b.example.org", "students": ["100001"], "records": 0})  # fmt: skip
        _disclosure(node, "T1", "200001", record)
        _disclosure(node, "T1", "100002")
        _disclosure(node, "T2", "100001")
    assert audit.breaks(node.db) == []
    node.db.execute("UPDATE disclosures SET student_sis_id = '100003' WHERE disclosure_id = 'T1100002'")
    node.db.execute("UPDATE disclosures SET to_domain = 'c.example.org', records = '[]', disclosed_by = 'admin' "
                    "WHERE disclosure_id = 'T1200001'")  # fmt: skip
    problems = [b.problem for b in audit.breaks(node.db)]
    assert any("names student 100003 for transfer T1" in p for p in problems)
    assert any("transfer T1 went to c.example.org (student 200001)" in p for p in problems)
    assert any("says admin disclosed student 200001 by transfer T1" in p and "coord did" in p for p in problems)
    assert any("lists 0 records for transfer T1" in p and "it disclosed 1" in p for p in problems)
    assert not any("T2" in p for p in problems)
