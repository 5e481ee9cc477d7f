import stat
from pathlib import Path

import pytest

from node.errors import HomeExists, HomeMissing
from node.home import expand_user, init_home, open_node, resolve_home
from protocol import InvalidInput

from support import node_fields


def test_init_creates_keys_0600_and_wal_db(tmp_path: Path) -> None:
    home = tmp_path / "h"
    init_home(home, node=node_fields("a.example.org"))
    for name in ("identity.key", "encryption.key"):
        assert stat.S_IMODE((home / "keys" / name).stat().st_mode) == 0o600
    with open_node(home) as node:
        assert node.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        uses = {r[0] for r in node.db.execute("SELECT use FROM node_keys")}
        assert uses == {"identity", "encryption"}
        assert node.keys.identity.public_key.key_id in {
            r[0] for r in node.db.execute("SELECT key_id FROM node_keys")
        }


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    home = tmp_path / "h"
    init_home(home, node=node_fields("a.example.org"))
    before = (home / "keys" / "identity.key").read_bytes()
    with pytest.raises(HomeExists):
        init_home(home, node=node_fields("a.example.org"))
    assert (home / "keys" / "identity.key").read_bytes() == before


def test_invalid_values_leave_no_home(tmp_path: Path) -> None:
    home = tmp_path / "h"
    with pytest.raises(Exception):  # noqa: B017 - any coded config error
        init_home(home, node={**node_fields("a.example.org"), "state": "ZZ"})
    assert not home.exists()


def test_home_resolution_order(tmp_path: Path) -> None:
    assert resolve_home(tmp_path / "x", {"SATCHEL_HOME": "/elsewhere"}) == tmp_path / "x"
    assert resolve_home(None, {"SATCHEL_HOME": str(tmp_path / "y")}) == tmp_path / "y"
    assert resolve_home(None, {}).name == "satchel-home"


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_home_option_is_refused_not_taken_for_the_default(empty: str) -> None:
    # `--home "$DIR"` with DIR unset went on with ./satchel-home: another home than the one meant.
    with pytest.raises(InvalidInput) as refused:
        resolve_home(empty, {"SATCHEL_HOME": "/srv/satchel"})
    assert refused.value.field == "--home" and refused.value.hint


NO_SUCH_USER = "~satchel-no-such-user-0"  # pathlib raises RuntimeError for a user with no home folder


def test_a_home_under_a_user_this_machine_does_not_have_is_refused_with_a_code() -> None:
    # Found by the CLI fuzz test under the deep profile: `--csv ~0` ended in "unexpected internal error".
    with pytest.raises(InvalidInput) as refused:
        resolve_home(f"{NO_SUCH_USER}/satchel", {})
    assert refused.value.field == "--home" and NO_SUCH_USER in refused.value.message and refused.value.hint
    assert expand_user(Path("~/x"), option="--home") == Path.home() / "x"  # the operator's own home still works


def test_open_missing_home(tmp_path: Path) -> None:
    with pytest.raises(HomeMissing):
        open_node(tmp_path / "nothing")


def test_a_home_that_cannot_be_made_says_why_and_where() -> None:
    from protocol import InvalidInput

    with pytest.raises(InvalidInput) as info:
        init_home(Path("/proc/satchel-home"), node=node_fields("a.example.org"))  # procfs makes no directories
    assert info.value.field == "--home"
    assert info.value.message.startswith("cannot create the home at /proc/satchel-home: ")
