import json
import sqlite3

from support import run_cli


def test_first_operator_must_be_admin(tmp_path) -> None:
    from node.home import init_home

    from support import node_fields

    home = tmp_path / "h"
    init_home(home, node=node_fields("a.example.org"))
    result = run_cli(
        home, "users", "add", "x", "--email", "x@a.org", "--name", "X", "--role", "viewer", ok=False
    )
    assert result.exit_code == 2 and "first operator of a node must be an admin" in result.stderr
    assert "Hint:" in result.stderr and "Traceback" not in result.output + result.stderr
    run_cli(home, "users", "add", "root", "--email", "r@a.org", "--name", "Root", "--role", "admin")
    # After the first, adding needs an admin to name themselves.
    result = run_cli(
        home, "users", "add", "y", "--email", "y@a.org", "--name", "Y", "--role", "viewer", ok=False
    )
    assert "(error code operator.required)" in result.stderr


def test_roles_are_enforced_and_audited(make_home) -> None:
    home = make_home()
    run_cli(home, "users", "add", "vic", "--email", "v@a.example.org", "--name", "Vic Viewer", "--role", "viewer",
            "--as", "admin")  # fmt: skip
    denied = run_cli(home, "transfers", "enable", "--as", "vic", ok=False)
    assert denied.exit_code == 2 and "operator.forbidden" in denied.stderr
    assert "Hint: ask an admin or a coordinator to do this" in denied.stderr
    admins_only = run_cli(home, "keys", "rotate", "--as", "vic", ok=False)
    assert "Hint: ask an admin to do this" in admins_only.stderr  # not a coordinator: they could not either
    unknown = run_cli(home, "transfers", "enable", "--as", "nobody", ok=False)
    assert "operator.unknown" in unknown.stderr
    assert "Transfers are now on." in run_cli(home, "transfers", "enable", "--as", "coord").output
    assert "already on" in run_cli(home, "transfers", "enable", "--as", "coord").output
    run_cli(home, "users", "disable", "coord", "--as", "admin")
    disabled = run_cli(home, "transfers", "disable", "--as", "coord", ok=False)
    assert "operator.disabled" in disabled.stderr
    # The operator may also come from SATCHEL_USER.
    run_cli(home, "transfers", "disable", env={"SATCHEL_USER": "admin"})

    entries = json.loads(run_cli(home, "audit", "--json").output)
    actions = [(e["actor"], e["action"]) for e in entries]
    assert ("coord", "transfers.enable") in actions and ("admin", "transfers.disable") in actions
    assert ("admin", "user.disable") in actions
    assert not any(e["actor"] == "vic" for e in entries)  # refused actions change nothing
    assert "hash chain verified" in run_cli(home, "audit", "verify").output


def test_audit_verify_detects_tampering(make_home) -> None:
    home = make_home()
    with sqlite3.connect(home / "satchel.db") as conn:
        conn.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    result = run_cli(home, "audit", "verify", ok=False)
    assert result.exit_code == 2 and "audit.chain_broken" in result.stderr


def test_contact_and_info(make_home) -> None:
    home = make_home()
    assert "(not set)" in run_cli(home, "contact", "show").output
    assert json.loads(run_cli(home, "contact", "show", "--json").output) is None
    bad = run_cli(home, "contact", "set", "--as", "coord", "--name", "J", "--email", "nope", ok=False)
    assert "Field: --email" in bad.stderr and "Hint: give the address" in bad.stderr
    # Published in the signed descriptor, which peers refuse above 256 KiB: bounded before it is saved.
    for option, value in (("--name", "J" * 201), ("--title", "T" * 201), ("--email", "a" * 250 + "@b.example")):
        long = run_cli(home, "contact", "set", "--as", "coord", "--name", "J", "--email", "j@a.example.org",
                       option, value, ok=False)  # fmt: skip
        assert f"Field: {option}" in long.stderr and "longer than" in long.stderr and "Hint:" in long.stderr
    assert json.loads(run_cli(home, "contact", "show", "--json").output) is None
    run_cli(home, "contact", "set", "--as", "coord", "--name", "Jane Doe", "--title", "Registrar",
            "--email", "jd@a.example.org", "--phone", "+1 217-555-0100")  # fmt: skip
    info = json.loads(run_cli(home, "info", "--json").output)
    assert info["coordinator"]["email"] == "jd@a.example.org"
    assert info["domain"] == "a.example.org" and info["transfers_enabled"] is False
    assert {k["use"] for k in info["keys"]} == {"identity", "encryption"}
    assert all(len(k["fingerprint"]) == 29 for k in info["keys"])
    text = run_cli(home, "info").output
    assert "Jane Doe" in text and "Transfers:   off" in text
    assert (
        run_cli(home, "contact", "show").output == "Jane Doe, Registrar <jd@a.example.org> +1 217-555-0100\n"
    )
    assert json.loads(run_cli(home, "contact", "show", "--json").output)["email"] == "jd@a.example.org"


def test_init_prints_fingerprint_and_refuses_overwrite(tmp_path) -> None:
    home = tmp_path / "new"
    args = ["init", "--domain", "c.example.org", "--name", "C", "--state", "il", "--city", "X", "--zip", "62700",
            "--url", "https://c.example.org"]  # fmt: skip
    out = run_cli(home, *args).output
    assert "Fingerprint:" in out
    fingerprint = out.split("Fingerprint:")[1].split()[0]
    assert len(fingerprint.split("-")) == 5
    again = run_cli(home, *args, ok=False)
    assert again.exit_code == 2 and "home.exists" in again.stderr
    bad = run_cli(tmp_path / "other", *args[:-1], "http://c.example.org", ok=False)
    assert "node.base_url" in bad.stderr and not (tmp_path / "other").exists()


def test_missing_home_says_what_to_do(tmp_path) -> None:
    result = run_cli(tmp_path / "none", "info", ok=False)
    assert result.exit_code == 2 and "satchel init" in result.stderr


def test_key_rotation_refuses_an_overlap_out_of_range_before_making_a_key(make_home) -> None:
    home = make_home()
    before = sorted(p.name for p in (home / "keys").iterdir())
    for days in ("0", "-3", "366", "99999999999999999999"):
        refused = run_cli(home, "keys", "rotate", "--overlap-days", days, "--as", "admin", ok=False)
        assert refused.exit_code == 2 and "Field: --overlap-days" in refused.stderr, refused.stderr
        assert "keys revoke" in refused.stderr
    assert sorted(p.name for p in (home / "keys").iterdir()) == before
    run_cli(home, "keys", "rotate", "--overlap-days", "1", "--as", "admin")
    assert len(list((home / "keys").iterdir())) == len(before) + 1


def test_disabling_twice_changes_nothing_the_second_time(make_home) -> None:
    home = make_home()
    assert "Disabled coord." in run_cli(home, "users", "disable", "coord", "--as", "admin").output
    first = json.loads(run_cli(home, "audit", "--json").output)
    again = run_cli(home, "users", "disable", "coord", "--as", "admin").output
    assert again.startswith("coord was already disabled (since 20")
    assert json.loads(run_cli(home, "audit", "--json").output) == first  # no second entry, no new time


def test_status_and_the_email_template_speak_json(make_home) -> None:
    home = make_home()
    assert json.loads(run_cli(home, "transfers", "status", "--json").output) == {"transfers_enabled": False}
    run_cli(home, "transfers", "enable", "--as", "coord")
    assert json.loads(run_cli(home, "transfers", "status", "--json").output) == {"transfers_enabled": True}
    template = json.loads(run_cli(home, "codes", "email-template", "--grade", "--json").output)
    assert template["subject"].startswith("Satchel transfer code request from ")
    assert "--grade [GRADE]" in template["body"] and "Subject:" not in template["body"]
    assert "the records of the students of grade [GRADE] at [SCHOOL] who now attend our district." in template["body"]
    text = run_cli(home, "codes", "email-template").output
    assert text.startswith("Subject: ") and "--student [SIS ID]" in text
    assert "born [BIRTH DATE], who last attended [SCHOOL] and now attends our district." in text
    both = run_cli(home, "codes", "email-template", "--grade", "--student", ok=False)
    assert both.exit_code == 2 and "not both" in both.stderr


def test_the_code_goes_by_phone_to_the_number_the_directory_lists_in_the_template_and_the_spec(make_home) -> None:
    from pathlib import Path

    home = make_home()
    body = json.loads(run_cli(home, "codes", "email-template", "--json").output)["body"]
    words = " ".join(body.split())
    # The e-mail asking for a code may be forged: the code goes back by phone, to the number the directory
    # publishes, never to one the e-mail gives (spec/codes.md §7).
    assert "give us the code by phone, not by e-mail" in words
    assert "`satchel directory search a.example.org --state IL`" in words and "not one taken from this e-mail" in words
    spec = " ".join((Path(__file__).parents[2] / "spec" / "codes.md").read_text().split())
    section = spec.split("## 7. Transfer codes")[1].split("### 7.1")[0]
    assert "gives it by phone to the district that asked" in section and "never by e-mail" in section
    assert "by e-mail or phone" not in section


def test_a_contact_with_control_characters_is_refused(make_home) -> None:
    # It is published in the descriptor, which every peer would then refuse (protocol.descriptor).
    home = make_home()
    for option, value in (("--name", "Jane\x1b[2JDoe"), ("--phone", "+1 217\r555")):
        args = {"--name": "Jane Doe", "--email": "jd@a.example.org", "--phone": "+1 217-555-0100"} | {option: value}
        refused = run_cli(home, "contact", "set", "--as", "coord", *[x for kv in args.items() for x in kv], ok=False)
        assert refused.exit_code == 2 and f"{option} contains a control character" in refused.stderr


def test_a_tampered_entry_can_be_read_and_compared_with_a_backup(make_home, tmp_path) -> None:
    home = make_home()
    run_cli(home, "users", "add", "vic", "--email", "vic@a.example.org", "--name", "Vic", "--role", "viewer",
            "--as", "admin")  # fmt: skip
    backup = tmp_path / "backup"
    run_cli(home, "backup", str(backup), "--as", "admin")
    assert "extends the backup's" in run_cli(home, "audit", "verify", "--against", str(backup)).output
    with sqlite3.connect(home / "satchel.db") as conn:
        seq = conn.execute("SELECT seq FROM audit_log WHERE action = 'user.add' AND subject = 'vic'").fetchone()[0]
        conn.execute("UPDATE audit_log SET details = 'role viewer -> admin' WHERE seq = ?", [seq])
    broken = run_cli(home, "audit", "verify", ok=False)
    assert f"audit entry {seq} was modified" in broken.stderr
    assert f"satchel audit --seq {seq}" in broken.stderr  # how to read it, and compare it with a backup's
    # The listing shows the entry as it now stands rather than failing on it.
    shown = run_cli(home, "audit", "--seq", str(seq))
    assert "role viewer -> admin" in shown.output and "(not JSON)" in shown.output
    listed = json.loads(run_cli(home, "audit", "--json").output)
    assert any(e["details"] == {"(not JSON)": "role viewer -> admin"} for e in listed)
    from_backup = run_cli(backup, "audit", "--seq", str(seq)).output
    assert "role=viewer" in from_backup
    against = run_cli(home, "audit", "verify", "--against", str(backup), ok=False)
    assert f"audit entry {seq} was modified" in against.stderr


def test_the_first_operator_is_recorded_as_added_by_nobody_else(tmp_path) -> None:
    from node.home import init_home

    from support import node_fields

    home = tmp_path / "h"
    init_home(home, node=node_fields("a.example.org"))
    # No operator exists yet to have done it: naming one put a name in the audit log that never was one.
    named = run_cli(home, "users", "add", "root", "--email", "r@a.org", "--name", "Root", "--role", "admin",
                    "--as", "superintendent", ok=False)  # fmt: skip
    assert named.exit_code == 2 and "(error code operator.unknown)" in named.stderr
    assert "add the first operator without --as" in named.stderr
    run_cli(home, "users", "add", "root", "--email", "r@a.org", "--name", "Root", "--role", "admin", "--as", "root")
    entries = json.loads(run_cli(home, "audit", "--json").output)
    assert [(e["actor"], e["subject"]) for e in entries if e["action"] == "user.add"] == [("(bootstrap)", "root")]


def test_only_a_coordinator_marks_the_coordinators_notifications_read(make_home) -> None:
    from node import notify
    from node.home import open_node
    from storage.database import write_transaction

    home = make_home()
    run_cli(home, "users", "add", "vic", "--email", "vic@a.example.org", "--name", "Vic", "--role", "viewer",
            "--as", "admin")  # fmt: skip
    with open_node(home) as node, write_transaction(node.db):
        notify.notify_coordinators(node, subject="Transfer 01M9 from b.example.org arrived", body="...")

    def unread() -> int:
        return len(json.loads(run_cli(home, "inbox", "--unread", "--json").output))

    # A viewer (or anyone at all, with no operator named) marking it read hid a transfer from the coordinators.
    for who, code in (((), "operator.required"), (("--as", "vic"), "operator.forbidden")):
        refused = run_cli(home, "inbox", "--mark-read", *who, ok=False)
        assert refused.exit_code == 2 and f"(error code {code})" in refused.stderr
        assert unread() == 1
    assert "Transfer 01M9" in run_cli(home, "inbox", "--as", "vic").output  # reading stays open to every role
    run_cli(home, "inbox", "--mark-read", "--as", "coord")
    assert unread() == 0
    marked = [e for e in json.loads(run_cli(home, "audit", "--json").output) if e["action"] == "inbox.mark_read"]
    assert [(e["actor"], e["details"]["notifications"]) for e in marked] == [("coord", 1)]


def test_disabling_the_published_coordinator_says_other_districts_still_see_them(make_home) -> None:
    home = make_home()
    run_cli(home, "contact", "set", "--name", "Cory Coordinator", "--email", "Coord@a.example.org", "--phone",
            "+1 217-555-0100", "--as", "coord")  # fmt: skip
    run_cli(home, "users", "add", "vic", "--email", "vic@a.example.org", "--name", "Vic", "--role", "viewer",
            "--as", "admin")  # fmt: skip
    assert "contact" not in run_cli(home, "users", "disable", "vic", "--as", "admin").output
    # Other districts would go on calling and writing to someone who left, about children's records.
    told = run_cli(home, "users", "disable", "coord", "--as", "admin").output
    assert "Cory Coordinator <Coord@a.example.org> is still the transfer coordinator contact" in told
    assert "satchel contact set" in told


def test_an_admin_changes_an_operators_role_and_a_demoted_one_stops_acting(make_home) -> None:
    home = make_home()
    run_cli(home, "roster", "import", str(_roster(home)), "--as", "coord")
    code = json.loads(run_cli(home, "codes", "create", "--student", "100001", "--as", "coord", "--json").output)
    # There was no way to take a coordinator's rights away but to disable them, and their e-mail stays theirs:
    # the same person could not be added back as a viewer.
    refused = run_cli(home, "users", "role", "coord", "viewer", "--as", "coord", ok=False)
    assert "(error code operator.forbidden)" in refused.stderr
    told = run_cli(home, "users", "role", "coord", "viewer", "--as", "admin").output
    assert "coord is now a viewer (was a coordinator)" in told and code["code_id"][:12] in told
    assert "(error code operator.forbidden)" in run_cli(home, "transfers", "disable", "--as", "coord",
                                                        ok=False).stderr  # fmt: skip
    listed = json.loads(run_cli(home, "codes", "list", "--json").output)
    assert [c["state"] for c in listed] == ["revoked"]
    assert "coord is a viewer already" in run_cli(home, "users", "role", "coord", "viewer", "--as", "admin").output
    run_cli(home, "users", "role", "coord", "coordinator", "--as", "admin")
    run_cli(home, "transfers", "disable", "--as", "coord")
    changes = [(e["actor"], e["subject"], e["details"]) for e in json.loads(run_cli(home, "audit", "--json").output)
               if e["action"] == "user.role"]  # fmt: skip
    assert changes == [("admin", "coord", {"from": "viewer", "to": "coordinator"}),
                       ("admin", "coord", {"from": "coordinator", "to": "viewer"})]  # fmt: skip
    # An admin cannot demote themselves (the node would be left with no admin); nor is a bad role taken.
    assert "ask another admin" in run_cli(home, "users", "role", "admin", "viewer", "--as", "admin", ok=False).stderr
    assert run_cli(home, "users", "role", "coord", "boss", "--as", "admin", ok=False).exit_code == 2


def _roster(home):
    from fixtures_oneroster import sample_bundle, write_bundle

    return write_bundle(home.parent / "roster", sample_bundle())
