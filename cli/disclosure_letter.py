"""`satchel disclosures STUDENT --text`: the record of disclosures as a letter a parent can read."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from datetime import date, datetime

from node.disclosure_record import Disclosure, outcome
from protocol.roster import StudentRecord
from storage.students import FormerNumber

WIDTH = 100
_LABEL = 15  # "Disclosed by:  "


def _when(at: str) -> str:
    moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    return f"{moment.day} {moment:%B %Y}, {moment:%H:%M} UTC"


def records_sent(records: list[dict[str, str]]) -> str:
    """``demographics; document "IEP 2025-26"; case BTAM-2025-031; 2 assessment results (MAP Fall 2024)``."""
    parts = ["demographics"] if any(r["kind"] == "demographics" for r in records) else []
    parts += [f'document "{r["title"]}"' if r["title"] else "a document" for r in records if r["kind"] == "document"]
    parts += [f"case {r['title']}" if r["title"] else "a case" for r in records if r["kind"] == "case"]
    scores = [r["title"] for r in records if r["kind"] == "assessment"]
    if scores:
        names = ", ".join(dict.fromkeys(t for t in scores if t))
        counted = f"{len(scores)} assessment result{'s' if len(scores) > 1 else ''}"
        parts.append(f"{counted} ({names})" if names else counted)
    return "; ".join(parts)


def _field(label: str, text: str) -> str:
    return textwrap.fill(text, WIDTH, initial_indent=f"   {label + ':':<{_LABEL}}",
                         subsequent_indent=" " * (3 + _LABEL), break_on_hyphens=False)  # fmt: skip


def render(
    district: str, domain: str, student: StudentRecord, disclosures: list[Disclosure], today: date,
    formers: Sequence[FormerNumber] = (),
) -> str:  # fmt: skip
    """``formers``: the student's former SIS numbers, oldest first (each disclosure says the one it went under)."""
    was = ", ".join(f"{f.former_sis_id} until {f.renumbered_at[:10]}" for f in formers)
    lines = [
        "Record of disclosures", *textwrap.wrap(f"{district} ({domain})", WIDTH), "",
        *textwrap.wrap(f"Student:  {student.given_name} {student.family_name}", WIDTH, subsequent_indent=" " * 10),
        *textwrap.wrap(f"SIS id:   {student.sis_id}" + (f" (formerly {was})" if was else ""), WIDTH,
                       subsequent_indent=" " * 10),
        f"Born:     {student.birth_date or '-'}",
        f"Printed:  {today.day} {today:%B %Y}", "",
    ]  # fmt: skip
    if not disclosures:
        lines.append("No education records of this student have been disclosed to another district through Satchel.")
        return "\n".join(lines)
    lines += textwrap.wrap(
        "Each disclosure below was sent to another school district in a signed, encrypted transfer that only "
        "that district could open; \"Outcome\" says whether it received and opened it.", WIDTH,
    )  # fmt: skip
    for number, d in enumerate(disclosures, 1):
        lines += ["", f"{number}. {_when(d.at)}", _field("To", f"{d.to_name} ({d.to_domain})")]
        by = d.disclosed_by_name
        lines.append(_field("Disclosed by", by if by == d.disclosed_by else f"{by} ({d.disclosed_by})"))
        if r := d.requested_by:
            contact = ", ".join(x for x in (f"{r.name} <{r.email}>", r.phone) if x)
            lines.append(_field("Requested by", f"{contact}, {r.domain} (records request {r.request_id})"))
        if d.sent_as and d.sent_as != student.sis_id:  # the number the other district holds the records under
            lines.append(_field("Sent as", f"SIS id {d.sent_as}"))
        lines += [
            _field("Records", records_sent(d.records)), _field("Purpose", d.purpose),
            _field("Outcome", outcome(d.transfer_state, d.opened)), _field("Transfer", d.transfer_id),
        ]  # fmt: skip
    return "\n".join(lines)
