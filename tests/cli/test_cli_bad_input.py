"""What a person types wrong, or a pipe that closes early, ends in a coded error or a usage error, never in
"unexpected internal error" (exit 3). Found by fuzzing the CLI: a port beyond 65535, a URL urllib cannot
split, a students file that is not UTF-8, a listing piped into `head`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from node.home import init_home

from fixtures_oneroster import make_bundle, write_bundle
from support import node_fields, run_cli


def _no_internal_error(result: Result) -> None:
    assert result.exit_code != 3, result.output + result.stderr
    assert "unexpected internal error" not in result.stderr
    assert "Traceback" not in result.output + result.stderr


@pytest.mark.parametrize("port", ["70000", "65536", "-1", str(10**30)])
def test_serve_refuses_a_port_out_of_range_before_starting(make_home: Callable[..., Path], port: str) -> None:
    result = run_cli(make_home(), "serve", "--port", port, ok=False)

    _no_internal_error(result)
    assert result.exit_code == 2 and "--port" in result.stderr and "0<=x<=65535" in result.stderr
    assert "listening" not in result.output


@pytest.fixture
def directory_home(tmp_path: Path) -> Path:
    home = tmp_path / "dir.example.org"
    run_cli(home, "directory", "init", "--domain", "dir.example.org", "--name", "State Board", "--state", "IL",
            "--city", "Springfield", "--zip", "62777", "--url", "https://dir.example.org")  # fmt: skip
    run_cli(home, "users", "add", "op", "--email", "op@dir.example.org", "--name", "Op", "--role", "admin")
    return home


def _url_commands(url: str) -> list[tuple[str, ...]]:
    return [
        ("peers", "add", url, "--yes", "--as", "admin"),
        ("directories", "add", url, "--fingerprint", "AAAAA-AAAAA", "--as", "admin"),
        ("directory", "join", url, "--as", "admin"),
    ]


# Each refused before any connection: none of these reaches the network.
MALFORMED = {
    "https://[::1": "not a well-formed URL",
    "https://[not-an-address]": "not a well-formed URL",
    "https://x.invalid:99999": "port",
    "https://x.invalid:-1": "port",
    "https://x.invalid:http": "port",
    "https://127.0.0.1:0": "port",
    "https://": "no host",
    "https:///path": "no host",
}


@pytest.mark.parametrize("url", MALFORMED)
def test_a_malformed_peer_url_is_invalid_input(make_home: Callable[..., Path], url: str) -> None:
    home = make_home()
    for args in _url_commands(url):
        result = run_cli(home, *args, ok=False)

        _no_internal_error(result)
        assert result.exit_code == 2, (args, result.stderr)
        assert MALFORMED[url] in result.stderr and "Field: url" in result.stderr, (args, result.stderr)
        assert "https://satchel.district.example" in result.stderr  # the hint shows the expected form
        assert "(error code input.invalid)" in result.stderr
        assert "peer.unreachable" not in result.stderr  # not "check that the other node is running"


def test_a_malformed_url_to_mirror_is_invalid_input(directory_home: Path) -> None:
    result = run_cli(directory_home, "directory", "mirror", "https://[::1", "--fingerprint", "AAAAA", "--as", "op",
                     ok=False)  # fmt: skip

    _no_internal_error(result)
    assert result.exit_code == 2 and "(error code input.invalid)" in result.stderr


def test_a_plain_http_url_is_still_refused_as_not_https(make_home: Callable[..., Path]) -> None:
    result = run_cli(make_home(), "peers", "add", "http://satchel.b.example.org", "--as", "admin", ok=False)

    assert result.exit_code == 2 and "(error code peer.origin_not_allowed)" in result.stderr


@pytest.mark.parametrize(
    "content",
    [
        "100001\n100002\n".encode("utf-16"),  # "Unicode text" as some spreadsheets save it
        bytes(range(256)),
        b"100001\n100002\n\xe9l\xe8ve\n",  # Latin-1
    ],
    ids=["utf-16", "binary", "latin-1"],
)
def test_a_students_file_that_is_not_utf8_is_invalid_input(
    make_home: Callable[..., Path], tmp_path: Path, content: bytes
) -> None:
    students = tmp_path / "students.txt"
    students.write_bytes(content)

    result = run_cli(make_home(), "send", "--to", "b.example.org", "--students-file", str(students), ok=False)

    _no_internal_error(result)
    assert result.exit_code == 2 and "Field: --students-file" in result.stderr
    assert str(students) in result.stderr and "UTF-8" in result.stderr
    assert "one SIS id per line" in result.stderr and "(error code input.invalid)" in result.stderr


def test_a_latin1_students_file_names_the_line(make_home: Callable[..., Path], tmp_path: Path) -> None:
    students = tmp_path / "students.csv"
    students.write_bytes(b"\xef\xbb\xbfsis_id,name\n100001,Ada\n100002,\xc9lise\n")  # a BOM, then Latin-1

    result = run_cli(make_home(), "send", "--to", "b.example.org", "--students-file", str(students), ok=False)

    assert result.exit_code == 2 and "line 3" in result.stderr


def test_a_listing_piped_into_head_ends_quietly(tmp_path: Path) -> None:
    # More than a pipe holds (64 KiB): `satchel` is still writing when its reader has gone.
    home = tmp_path / "a.example.org"
    init_home(home, node=node_fields("a.example.org"))
    run_cli(
        home, "users", "add", "admin", "--email", "admin@a.example.org", "--name", "Ada", "--role", "admin"
    )
    roster = [{"sis_id": str(200000 + i), "given_name": "Given", "family_name": f"Family{i:05d}",
               "birth_date": "2012-03-14", "grade": "07", "school_id": "0101", "school_name": "Lincoln Middle School"}
              for i in range(2500)]  # fmt: skip
    run_cli(
        home, "roster", "import", str(write_bundle(tmp_path / "roster", make_bundle(roster))), "--as", "admin"
    )
    satchel = str(Path(sys.executable).with_name("satchel"))

    # A table is written line by line, each write all or nothing: the one after head has gone fails. The JSON
    # is one write, which the pipe takes in part; Python then drops the rest without an error, unless head
    # was gone before it began.
    for argv, ends in (([], {141}), (["--json"], {0, 141})):
        listing = subprocess.Popen([satchel, "students", "list", "--limit", "2500", *argv, "--home", str(home)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        head = subprocess.run(
            ["head", "-1"], stdin=listing.stdout, capture_output=True, timeout=60, check=True
        )
        assert listing.stdout is not None and listing.stderr is not None
        listing.stdout.close()  # head alone reads the pipe, as in a shell
        err = listing.stderr.read().decode()
        listing.wait(timeout=60)

        assert head.stdout.startswith((b"SIS ID", b"["))
        assert err == "", err  # no "unexpected internal error", no "Exception ignored", no traceback
        assert listing.returncode in ends


def test_refreshing_an_unknown_district_is_not_found_not_a_signature_problem(make_home: Callable[..., Path]) -> None:
    refused = run_cli(make_home(), "peers", "refresh", "nosuch.example", ok=False)
    assert "nosuch.example is not a known district" in refused.stderr and "peers list" in refused.stderr
    assert "(error code not_found)" in refused.stderr and "signature" not in refused.stderr


@pytest.mark.parametrize("name", ["Ana\nMaria", "Ana\tMaria", "Ana\x1b[2J", "A" * 201])
def test_an_operator_s_name_is_one_line_of_text_another_district_takes(
    make_home: Callable[..., Path], name: str
) -> None:
    """The name signs records requests and answers, which other districts refuse with a line break in it."""
    result = run_cli(make_home(), "users", "add", "newop", "--email", "newop@a.example.org", "--name", name,
                     "--role", "viewer", "--as", "admin", ok=False)  # fmt: skip
    _no_internal_error(result)
    assert result.exit_code != 0 and "full_name" in result.stderr, result.stderr
    assert "one line, at most 200 characters" in result.stderr  # what to do next


NO_SUCH_USER = "~satchel-no-such-user-0"


@pytest.mark.parametrize("argv", [
    ("import", "review", "T1", "--csv", f"{NO_SUCH_USER}/review.csv", "--as", "admin"),  # the fuzz test's find
    ("backup", f"{NO_SUCH_USER}/backup", "--as", "admin"),
    ("users", "list", "--home", f"{NO_SUCH_USER}/satchel"),
])  # fmt: skip
def test_a_path_under_a_user_this_machine_does_not_have_is_invalid_input(
    make_home: Callable[..., Path], argv: tuple[str, ...]
) -> None:
    # `~0` (pathlib's RuntimeError: no home folder for that user) ended in "unexpected internal error".
    result = run_cli(make_home(), *argv, ok=False)
    _no_internal_error(result)
    assert result.exit_code == 2 and "no home folder for it" in result.stderr and "input.invalid" in result.stderr
