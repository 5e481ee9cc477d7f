"""The district's time zone (requests.timezone) says when its day starts, whatever the machine's clock is set to
(a container often runs in UTC): the day a records request opens and the overdue rule counts from, and the date a
letter for a parent is printed on."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fixtures_oneroster import sample_bundle, write_bundle
from support import run_cli


def test_the_district_day_follows_its_time_zone_not_the_machines(make_home, tmp_path) -> None:
    home = make_home()
    run_cli(home, "roster", "import", str(write_bundle(tmp_path / "roster", sample_bundle())), "--as", "coord")
    # Twenty-five hours apart: at any moment these two are on different days, so one of them is not the
    # machine's day either.
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):
        days = {f"Printed:  {d.day} {d:%B %Y}" for d in (datetime.now(ZoneInfo(zone)).date(),)}
        letter = run_cli(home, "disclosures", "100001", "--text", env={"SATCHEL_REQUESTS_TIMEZONE": zone}).output
        days |= {f"Printed:  {d.day} {d:%B %Y}" for d in (datetime.now(ZoneInfo(zone)).date(),)}  # midnight there
        assert any(day in letter for day in days), (zone, letter)


def test_a_time_zone_the_machine_does_not_know_is_refused_with_its_setting(make_home) -> None:
    home = make_home()
    for name in ("CST", "Mars/Olympus_Mons", "../../etc/passwd"):
        refused = run_cli(home, "disclosures", "100001", "--text", ok=False, env={"SATCHEL_REQUESTS_TIMEZONE": name})
        assert "requests.timezone" in refused.output + refused.stderr
        assert 'timezone = "America/Chicago"' in refused.output + refused.stderr
