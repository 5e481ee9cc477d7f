"""Directory commands say what to do when run where they do not apply."""

from __future__ import annotations

from pathlib import Path

from support import run_cli


def test_an_operator_command_on_a_district_points_at_the_directory_home(make_home) -> None:
    home = make_home()
    for command in (("directory", "list"), ("directory", "sync"), ("directory", "approve", "b.example.org",
                                                                    "--as", "admin")):  # fmt: skip
        refused = run_cli(home, *command, ok=False)
        assert refused.exit_code == 2 and "(error code directory.not_a_directory)" in refused.stderr
        assert "Hint: this command runs on a directory's own home (made with `satchel directory init`)" in (
            refused.stderr
        )
        assert "use the directory's URL" not in refused.stderr  # a peer's hint, not an operator's


def test_sync_with_nothing_mirrored_says_so(tmp_path: Path) -> None:
    home = tmp_path / "dir"
    run_cli(home, "directory", "init", "--domain", "directory.example.gov", "--name", "State Board", "--state", "IL",
            "--city", "Springfield", "--zip", "62777", "--url", "https://directory.example.gov")  # fmt: skip
    assert run_cli(home, "directory", "sync").output == (
        "No directory is mirrored here; add one with `satchel directory mirror URL`.\n"
    )
