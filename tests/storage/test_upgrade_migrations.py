"""Opening a home that an older release left: migrations it recorded under names since changed, and two
processes opening it at once right after the upgrade."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import sqlite_utils

from storage.database import open_database
from storage.migrations import FORMER_NAMES, MIGRATIONS

NOW = "2026-12-05T00:00:00Z"


def _applied(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [name for (name,) in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]


def _as_released(path: Path, renamed: dict[str, str]) -> None:
    """A home as a release left it: migrations applied up to the last of ``renamed`` (name of now -> name
    then), those recorded under the name they had then; a request it released."""
    names = [m.name for m in MIGRATIONS._migrations]
    last = max(names.index(name) for name in renamed)
    db = open_database(path, migrate=False)
    MIGRATIONS.apply(db, stop_before=names[last + 1] if last + 1 < len(names) else None)
    for name, then in renamed.items():
        db.execute("UPDATE _sqlite_migrations SET name = ? WHERE name = ?", [then, name])
    db.conn.execute(
        "INSERT INTO records_requests (request_id, side, state, peer, signed_request, opened_on, working_days,"
        " created_at, updated_at) VALUES ('R1', 'releaser', 'released', 'b.example.org', x'', '2026-12-01', 10,"
        " ?, ?)", [NOW, NOW],
    )  # fmt: skip
    db.close()


@pytest.mark.parametrize(
    ("release", "renamed"),
    [
        # 5256349: the directory cache's fields were 0021
        ("5256349", {"0020_directory_cache_fields": "0021_directory_cache_fields"}),
        # cd30280: request answers were 0024, after the cache's fields
        ("cd30280", {"0021_request_answers_sent": "0024_request_answers_sent"}),
        # 5c6f789: both, the students' source ids as 0021
        ("5c6f789",
         {"0021_request_answers_sent": "0024_request_answers_sent",
          "0022_students_source_id": "0021_students_source_id"}),
        # e6aa2b1: the day a release failed was 0024, renumbered before the import log's 0024 landed
        ("e6aa2b1", {"0023_request_release_failed_on": "0024_request_release_failed_on"}),
    ],
)  # fmt: skip
def test_a_home_from_a_release_that_named_a_migration_otherwise_opens_and_is_brought_up_to_date(
    tmp_path: Path, release: str, renamed: dict[str, str]
) -> None:
    path = tmp_path / "satchel.db"
    _as_released(path, renamed)
    assert set(renamed.values()) <= set(_applied(path))

    db = open_database(path)  # was storage.schema_newer: "changed by a newer version of Satchel"

    applied = _applied(path)
    assert sorted(applied) == sorted(m.name for m in MIGRATIONS._migrations)
    assert not set(applied) & set(FORMER_NAMES)
    assert MIGRATIONS.pending(db) == []
    # The data the renamed migrations made is there once: the columns and the index, the answer counted.
    assert db.execute("SELECT answers_sent FROM records_requests").fetchone() == (0,)
    assert "state" in db["directory_cache"].columns_dict
    assert "students_source_id" in {index.name for index in db["students"].indexes}
    db.close()
    open_database(path).close()  # and again: nothing left to do


def test_a_home_opened_by_two_processes_at_once_after_an_upgrade_is_migrated_once(tmp_path: Path) -> None:
    """The server restarting under the new version while a command (a nightly backup) opens the home: the one
    that read the pending migrations before the other applied them ran them again and failed."""
    path = tmp_path / "satchel.db"
    db = open_database(path, migrate=False)
    MIGRATIONS.apply(db, stop_before="0014_request_reminders")
    db.close()

    first = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    first.execute("PRAGMA busy_timeout = 10000")
    first.execute("BEGIN IMMEDIATE")  # the other process, migrating: it holds the write lock
    outcome: list[object] = []

    def second_process() -> None:
        try:
            open_database(path).close()
            outcome.append("opened")
        except Exception as exc:  # what the command would have died of
            outcome.append(exc)

    other = threading.Thread(target=second_process)
    other.start()
    time.sleep(1.0)  # it has looked at what is pending, and waits for the lock
    MIGRATIONS.apply(sqlite_utils.Database(first))
    first.execute("COMMIT")
    other.join(30)
    first.close()

    assert outcome == ["opened"]
    assert sorted(_applied(path)) == sorted(m.name for m in MIGRATIONS._migrations)



def test_an_operator_and_the_contact_an_older_version_took_with_a_tab_are_made_one_line(tmp_path: Path) -> None:
    """Before the one-line rules `users add` and `contact set` took tabs and line breaks; both names go out in
    signed documents whose readers now refuse them, and no command renames an operator."""
    from protocol.records_request import Person

    db = open_database(tmp_path / "satchel.db", migrate=False)
    MIGRATIONS.apply(db, stop_before="0026_one_line_names")
    for username, full_name in (("bo", "Bo\tBrown"), ("cy", "Cy\n Lee "), ("dee", "Dee  Day")):
        db.execute("INSERT INTO users (username, email, full_name, role, created_at) VALUES (?, ?, ?, 'coordinator',"
                   " ?)", [username, f"{username}@b.example.org", full_name, NOW])  # fmt: skip
    contact = {"name": "Bo\tBrown", "title": "Registrar\t", "email": "bo@b.example.org", "phone": "+1 217-555-0100"}
    db.execute("INSERT INTO settings (key, value) VALUES ('district.contact', ?)", [json.dumps(contact)])

    MIGRATIONS.apply(db)

    names = dict(db.execute("SELECT username, full_name FROM users").fetchall())
    assert names == {"bo": "Bo Brown", "cy": "Cy Lee", "dee": "Dee  Day"}  # a name without one is left as it is
    (stored,) = db.execute("SELECT value FROM settings WHERE key = 'district.contact'").fetchone()
    assert json.loads(stored) == {**contact, "name": "Bo Brown", "title": "Registrar"}
    Person(name=names["bo"], email="bo@b.example.org", title="Registrar")  # what a request now carries
