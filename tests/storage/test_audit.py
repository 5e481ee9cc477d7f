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
