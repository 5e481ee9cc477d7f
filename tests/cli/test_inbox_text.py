"""`satchel inbox --full` gives each notice's text, the command to run next included, for a district whose
node sends no e-mail: the table gives subjects only."""

from __future__ import annotations

from node.home import open_node
from node.notify import notify_coordinators
from storage.database import write_transaction

from support import run_cli


def test_the_inbox_gives_the_whole_notice_with_its_next_command(make_home) -> None:
    home = make_home()
    with open_node(home) as node, write_transaction(node.db):
        notify_coordinators(node, subject="New incoming transfer T1 from b.example.org",
                            body="New incoming transfer T1 from b.example.org.\n\nsatchel accept T1 --code CODE\n"
                                 "Their coordinator: Bo \u202eBrown\n")  # fmt: skip
    table = run_cli(home, "inbox").output
    assert "New incoming transfer T1" in table and "satchel accept" not in table
    full = run_cli(home, "inbox", "--full").output
    assert "  New incoming transfer T1 from b.example.org.\n\n  satchel accept T1 --code CODE\n" in full
    assert "(unread)" in full and "Bo <U+202E>Brown" in full  # another district's text cannot reorder the line
    run_cli(home, "inbox", "--mark-read", "--as", "coord")
    assert "(unread)" not in run_cli(home, "inbox", "--full").output
