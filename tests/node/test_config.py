import re
import tomllib
from datetime import date
from pathlib import Path

import pytest

from node.config import SETTINGS, build_config, render_toml
from node.errors import ConfigError

GOOD = {
    "node": {
        "domain": "a.example.org",
        "name": "A",
        "state": "IL",
        "zip": "62701",
        "base_url": "https://a.example.org",
    }
}


def test_defaults_and_env_override(tmp_path: Path) -> None:
    config = build_config(tmp_path, GOOD, {"SATCHEL_SERVER_PORT": "9000"})
    assert config.server.port == 9000 and config.server.host == "127.0.0.1"
    assert config.node.nces_id == "" and config.smtp.tls == "starttls"
    assert "password" not in repr(config.smtp) or "secret" not in repr(config.smtp)
    assert config.storage.reserve_mib == 256 and config.storage.reserve_bytes == 256 << 20
    assert build_config(tmp_path, GOOD, {"SATCHEL_STORAGE_RESERVE_MIB": "0"}).storage.reserve_bytes == 0


@pytest.mark.parametrize(
    ("section", "name", "value", "field"),
    [
        ("node", "domain", "not a domain", "node.domain"),
        ("node", "domain", "a.example.org-", "node.domain"),  # peers would refuse its descriptor
        ("node", "state", "Illinois", "node.state"),
        ("node", "zip", "6270", "node.zip"),
        ("node", "base_url", "http://a.example.org", "node.base_url"),
        ("node", "nces_id", "12", "node.nces_id"),
        ("server", "port", 70000, "server.port"),
        ("server", "port", "eighty", "server.port"),
        ("node", "unknown", "x", "node.unknown"),
        ("requests", "holidays", "2026-12-25, 12/26/2026", "requests.holidays"),
        ("requests", "holidays", "2026-02-30", "requests.holidays"),
        ("requests", "holidays", "20261225", "requests.holidays"),
        ("storage", "reserve_mib", -1, "storage.reserve_mib"),
        ("storage", "reserve_mib", (1 << 20) + 1, "storage.reserve_mib"),
        ("node", "name", "District\x1b[2J", "node.name"),  # peers refuse a descriptor that shows it
        ("node", "city", "Spring\nfield", "node.city"),
        ("federation", "key_lookups_per_minute", 0, "federation.key_lookups_per_minute"),
        # Every incoming request would be refused as invalid (its working days are 1 to 365, spec/requests.md).
        ("requests", "overdue_working_days", 0, "requests.overdue_working_days"),
        ("requests", "overdue_working_days", 366, "requests.overdue_working_days"),
    ],
)
def test_bad_values_name_their_field(
    tmp_path: Path, section: str, name: str, value: object, field: str
) -> None:
    values = {k: dict(v) for k, v in GOOD.items()}
    values.setdefault(section, {})[name] = value
    with pytest.raises(ConfigError) as info:
        build_config(tmp_path, values, {})
    assert info.value.field == field


def test_missing_required(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        build_config(tmp_path, {"node": {"domain": "a.example.org"}}, {})
    assert info.value.field == "node.name"


def test_every_setting_has_help_and_env() -> None:
    for setting in SETTINGS:
        assert setting.help and setting.env.startswith("SATCHEL_")


def test_holidays_for_the_overdue_rule(tmp_path: Path) -> None:
    assert build_config(tmp_path, GOOD, {}).requests.holidays == frozenset()
    values = {**GOOD, "requests": {"holidays": "2026-11-26, 2026-11-27,2026-12-25  2026-12-25"}}
    assert build_config(tmp_path, values, {}).requests.holidays == {
        date(2026, 11, 26),
        date(2026, 11, 27),
        date(2026, 12, 25),
    }
    env = build_config(tmp_path, values, {"SATCHEL_REQUESTS_HOLIDAYS": "2027-01-01"})
    assert env.requests.holidays == {date(2027, 1, 1)}


def test_the_written_file_lists_every_setting_with_its_default(tmp_path: Path) -> None:
    # An operator finds what can be set in the file they edit (it listed only the values `satchel init` was given,
    # so a setting such as requests.timezone was found only by reading the code).
    text = render_toml(GOOD)
    assert tomllib.loads(text) == GOOD
    for setting in SETTINGS:
        assert re.search(rf"^(# )?{setting.name} = ", text, re.M), setting.key
    # Each default, uncommented with its section, reads as the default it shows.
    uncommented = re.sub(r"^# (\[\w+\]|\w+ = .*)$", r"\1", text, flags=re.M)
    assert len(tomllib.loads(uncommented)) == len({s.section for s in SETTINGS})
    assert build_config(tmp_path, tomllib.loads(uncommented), {}) == build_config(tmp_path, GOOD, {})
