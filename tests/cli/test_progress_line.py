"""The progress line: drawn in place, at most a few times a second, only where a person is looking."""

from __future__ import annotations

import io

import pytest

from cli.progress import ProgressLine, wanted


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_line_is_redrawn_in_place_at_most_five_times_a_second_and_always_at_the_end() -> None:
    out, clock = io.StringIO(), _Clock()
    line = ProgressLine("Sealing", stream=out, enabled=True, clock=clock)
    line(1 << 20, 4 << 20)
    clock.now += 0.1
    line(2 << 20, 4 << 20)  # too soon after the last: not drawn
    clock.now += 0.15
    line(3 << 20, 4 << 20)
    clock.now += 0.01
    line(4 << 20, 4 << 20)  # the end is always drawn
    line.close()
    assert out.getvalue() == (
        "\rSealing 1.0 MiB of 4.0 MiB (25%)"
        "\rSealing 3.0 MiB of 4.0 MiB (75%)"
        "\rSealing 4.0 MiB of 4.0 MiB (100%)"
        "\n"
    )


def test_a_shorter_text_covers_what_a_longer_one_left_on_the_line() -> None:
    out = io.StringIO()
    line = ProgressLine("Saving", unit="students", stream=out, enabled=True)
    line.phase("Reading the roster, a long phase name...")
    line(12_000, 12_000)
    drawn = out.getvalue().split("\r")[-1]
    assert drawn.rstrip() == "Saving 12,000 of 12,000 students (100%)"
    assert len(drawn) == len("Reading the roster, a long phase name...")


def test_a_line_that_ends_when_done_leaves_the_next_step_a_line_of_its_own() -> None:
    out = io.StringIO()
    checking = ProgressLine("Checking", stream=out, enabled=True, ends=True)
    saving = ProgressLine("Saving", unit="results", stream=out, enabled=True)
    checking(1024, 2048)
    checking(2048, 2048)
    saving(5, 5)
    checking.close()  # closed again as its block ends: no second newline
    saving.close()
    assert out.getvalue() == (
        "\rChecking 1.0 KiB of 2.0 KiB (50%)\rChecking 2.0 KiB of 2.0 KiB (100%)\n"
        "\rSaving 5 of 5 results (100%)\n"
    )


@pytest.mark.parametrize(
    ("count", "shown"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 << 20, "5.0 MiB"), (3 << 30, "3.0 GiB")]
)
def test_sizes_are_shown_in_the_largest_binary_unit_that_fits(count: int, shown: str) -> None:
    out = io.StringIO()
    ProgressLine("Opening", stream=out, enabled=True)(count, count)
    assert out.getvalue() == f"\rOpening {shown} of {shown}" + (" (100%)" if count else "")


def test_nothing_is_written_when_nobody_looks_and_close_adds_no_empty_line() -> None:
    out = io.StringIO()
    line = ProgressLine("Sealing", stream=out)  # not a terminal: off
    line(1, 2)
    line.phase("Reading...")
    line.close()
    assert out.getvalue() == ""
    shown = io.StringIO()
    ProgressLine("Sealing", stream=shown, enabled=True).close()  # nothing drawn, nothing to end
    assert shown.getvalue() == ""


def test_a_terminal_gets_the_line_unless_the_environment_says_otherwise(monkeypatch) -> None:
    monkeypatch.delenv("SATCHEL_PROGRESS", raising=False)
    assert wanted(_Terminal()) and not wanted(io.StringIO())
    monkeypatch.setenv("SATCHEL_PROGRESS", "0")
    assert not wanted(_Terminal())
    monkeypatch.setenv("SATCHEL_PROGRESS", "1")
    assert wanted(io.StringIO())
