"""A records request that both districts stored under an older release, whose checks took a tab in a name
(before the one-line rule): after the upgrade it is listed, shown, released and followed to its end. It made
`requests list` fail at both districts, could not be answered, and the receipts of its release's transfer were
refused for good."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from test_requests import _json, _request_state, _requested, _wait

from crypto import IdentityKey
from protocol.descriptor import FEATURE_RELEASE_FAILED, sign_descriptor, verify_descriptor
from protocol.json_strict import dumps_canonical
from protocol.records_request import PURPOSE_REQUEST
from protocol.signed_document import sign_document, verify_document

from support import DEV_ENV, FAST_ENVELOPES, District, make_district, transfer_json


def _as_an_older_release_signed_it(a: District, b: District, request_id: str) -> None:
    """The request as B's node signed it, and both nodes kept it, before the one-line rule: the requester's
    name with a tab in it."""
    key = IdentityKey.import_secret((b.home / "keys" / "identity.key").read_text())
    for district in (a, b):
        with sqlite3.connect(district.home / "satchel.db") as conn:
            query = "SELECT signed_request FROM records_requests WHERE request_id = ?"
            (signed,) = conn.execute(query, [request_id]).fetchone()
            payload = json.loads(verify_document(signed, purpose=PURPOSE_REQUEST).payload)
            payload["requester"]["name"] = "Cory\tCoordinator"
            older = sign_document(PURPOSE_REQUEST, dumps_canonical(payload), key)
            conn.execute("UPDATE records_requests SET signed_request = ? WHERE request_id = ?", [older, request_id])


def test_a_request_stored_before_the_one_line_rule_is_answered_and_followed_to_its_end(pair) -> None:
    a, b, _ = pair
    request_id = _requested(a, b, "100001")
    _as_an_older_release_signed_it(a, b, request_id)

    for district in (a, b):
        assert [r["request_id"] for r in _json(district, "requests", "list", "--json")] == [request_id]
    assert _json(a, "requests", "show", request_id, "--json")["requester"]["name"] == "Cory\tCoordinator"
    assert "Cory Coordinator" in a.cli("requests", "list").stdout  # one line in the table

    released = a.cli("requests", "release", request_id, "--student", "100001", "--all-records", "--as", "coord")
    code = released.stdout.split("Authentication code: ")[1].split()[0]
    transfer_id = released.stdout.split("transfer ")[1].split(".")[0]
    _wait(lambda: _request_state(b, request_id) == "released")
    b.cli("accept", transfer_id, "--code", code, "--as", "coord")
    b.cli("import", "preview", transfer_id, "--as", "coord")
    assert _json(b, "import", "run", transfer_id, "--as", "coord", "--json")["imported"] == 1
    # The receipts follow the request at A (spec/requests.md §2): they are taken, not refused for good.
    _wait(lambda: transfer_json(a, transfer_id)["state"] == "imported")
    assert _request_state(a, request_id) == "released"
    b.cli("requests", "message", request_id, "Received, thank you", "--as", "coord")
    _wait(lambda: len(_json(a, "requests", "show", request_id, "--json")["messages"]) == 1)


# ---------------------------------------------------------------------------------- a node of an older version

# The last commit before `release_failed` (cd30280): its nodes refuse that answer kind (request.invalid), and
# their request machine has no way back from `released` (a second release is request.mismatch).
BEFORE_RELEASE_FAILED = "26c46b83c0d0af386f187ac2d799019814a327e2"
_REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def before_release_failed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """That commit's source tree, taken from this repository's history (skipped where there is none: a tarball)."""
    tree = tmp_path_factory.mktemp("satchel-26c46b8")
    try:
        archive = subprocess.run(["git", "-C", str(_REPOSITORY), "archive", BEFORE_RELEASE_FAILED],
                                 capture_output=True, check=True, timeout=60).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"this checkout has no history to run the older version from: {exc}")
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True, timeout=60)
    return tree


class OlderDistrict(District):
    """A district whose node runs the source tree ``tree`` (an older commit), in processes of its own: its
    home made, its commands run and its node served by that version's code, on this environment's libraries."""

    tree: Path

    @classmethod
    def make(cls, tree: Path, tmp: Path, domain: str, smtp_port: int) -> OlderDistrict:
        made = _older_python(tree, "from support import make_district; from pathlib import Path; "
                             f"print(make_district(Path({str(tmp)!r}), {domain!r}, {smtp_port}).url)")  # fmt: skip
        district = cls(tmp / domain, domain, made.stdout.split()[-1], {**DEV_ENV, **FAST_ENVELOPES,
                       "SATCHEL_SMTP_HOST": "127.0.0.1", "SATCHEL_SMTP_PORT": str(smtp_port),
                       "SATCHEL_SMTP_TLS": "none", "SATCHEL_SMTP_SENDER": f"satchel@{domain}"})  # fmt: skip
        district.tree = tree
        return district

    def cli(self, *args: str, ok: bool = True):  # type: ignore[override]
        done = subprocess.run([sys.executable, "-c", _OLDER_CLI, *args, "--home", str(self.home)], env=self._environ(),
                              cwd=self.tree, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert not ok or done.returncode == 0, f"older satchel {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
        return done

    def start(self, port: int | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _OLDER_CLI, "serve", "--home", str(self.home), "--port",
             self.url.rsplit(":", 1)[1], "--dev"],
            env=self._environ(), cwd=self.tree, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        assert "listening on" in self.process.stdout.readline()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=30) == 0

    def _environ(self) -> dict[str, str]:
        return {**os.environ, **self.env, "PYTHONPATH": str(self.tree), "PYTHONUNBUFFERED": "1"}


_OLDER_CLI = "from cli.main import cli; cli(prog_name='satchel')"


def _older_python(tree: Path, code: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{tree / 'tests'}"}
    # Run from the tree: `python -c` puts the working directory first on sys.path, before PYTHONPATH.
    return subprocess.run([sys.executable, "-c", code], env=environ, cwd=tree, capture_output=True, text=True,
                          check=True, timeout=300)  # fmt: skip


def _as_if_it_had_upgraded(a: District, b: District) -> None:
    """A fetches B's descriptor anew, and it lists request.release_failed."""
    key = IdentityKey.import_secret((b.home / "keys" / "identity.key").read_text())
    with sqlite3.connect(a.home / "satchel.db") as conn:
        query = "SELECT descriptor FROM peers WHERE domain = ?"
        (signed,) = conn.execute(query, [b.domain]).fetchone()
        upgraded = replace(verify_descriptor(signed).descriptor, features=(FEATURE_RELEASE_FAILED,))
        conn.execute("UPDATE peers SET descriptor = ? WHERE domain = ?", [sign_descriptor(upgraded, key), b.domain])


def _answers_refused(d: District) -> list[tuple[str, str]]:
    with sqlite3.connect(d.home / "satchel.db") as conn:
        query = "SELECT job_id, last_error FROM outbox WHERE kind = 'request' AND status != 'done'"
        return conn.execute(query).fetchall()


def test_an_older_requester_is_told_in_words_of_a_failed_release_and_takes_the_next(
    tmp_path: Path, smtp, before_release_failed: Path
) -> None:
    """A (this version) releases to B (a version before release_failed), B refuses the transfer, A releases
    again. B refused the news (request.invalid) and then the next release (request.mismatch), both for good:
    its coordinators never learnt that the records were coming again, and A's were told that B refused."""
    _, port = smtp
    a = make_district(tmp_path, "a.example.org", port)
    b = OlderDistrict.make(before_release_failed, tmp_path, "b.example.org", port)
    a.start()
    b.start()
    try:
        a.cli("peers", "add", b.url, "--yes", "--as", "coord")
        b.cli("peers", "add", a.url, "--yes", "--as", "coord")  # the older node takes this version's descriptor
        request_id = _requested(a, b, "100001")

        wrong = a.cli("requests", "release", request_id, "--student", "100001", "--all-records", "--as", "coord")
        wrong_id = wrong.stdout.split("transfer ")[1].split(".")[0]
        _wait(lambda: _request_state(b, request_id) == "released")
        b.cli("reject", wrong_id, "--reason", "not the student we asked for", "--as", "coord")
        _wait(lambda: _request_state(a, request_id) == "release_failed")
        _wait(lambda: len(_json(b, "requests", "show", request_id, "--json")["messages"]) == 1)
        assert _request_state(b, request_id) == "released"  # the older machine: no way back from released
        _as_if_it_had_upgraded(a, b)  # its request still released: what follows must go in words too

        again = a.cli("requests", "release", request_id, "--student", "100001", "--all-records", "--as", "coord")
        code = again.stdout.split("Authentication code: ")[1].split()[0]
        transfer_id = again.stdout.split("transfer ")[1].split(".")[0]
        _wait(lambda: len(_json(b, "requests", "show", request_id, "--json")["messages"]) == 2)
        told = [m["text"] for m in _json(b, "requests", "show", request_id, "--json")["messages"]]
        assert f"The transfer {wrong_id} that released the records ended rejected" in told[0]
        assert f"released again, in a new transfer {transfer_id}" in told[1]
        assert _answers_refused(a) == []  # each answer taken: nothing given up, nobody told of a refusal

        b.cli("accept", transfer_id, "--code", code, "--as", "coord")
        b.cli("import", "preview", transfer_id, "--as", "coord")
        assert _json(b, "import", "run", transfer_id, "--as", "coord", "--json")["imported"] == 1
        _wait(lambda: transfer_json(a, transfer_id)["state"] == "imported")
        assert _request_state(a, request_id) == "released"
    finally:
        a.stop()
        b.stop()
