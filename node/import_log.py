"""The import log (one row per student, as the vendor's CSV has it) and the list of completed imports."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from node.home import Node
from node.import_preview import sent_values, verified_manifest
from node.operator_files import outside_home, private_file
from storage import imports
from storage import transfers as store
from storage.imports import ImportStudent

# After the name and grade, each id as the other district sent it and as this district held it when the
# import wrote it (the vendor's log has both sides, to spot what changed): a student linked to one held here
# keeps this district's values; one created here has no account (username, e-mail) until the roster gives
# one. The destination side is stored with each student's result, so the log reads the same however the
# student changes here later (a roster update, a move, a purge).
LOG_COLUMNS = (
    "FirstName", "LastName", "Grade", "SourceStudentId", "DestinationStudentId", "SourceStateId",
    "DestinationStateId", "SourceUsername", "DestinationUsername", "SourceEmail", "DestinationEmail",
    "SourceImportStatus", "ScoreImportStatus", "DocumentCount", "Reason",
)  # fmt: skip


# A cell a spreadsheet would read as a formula (OWASP, "CSV injection"). Names and ids come from another
# district; the registrar opens this file in Excel, where =HYPERLINK(...) in a first name would send the
# sheet's contents wherever it points, once clicked.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: Any) -> Any:
    """Text that starts like a formula, led by an apostrophe (which Excel and LibreOffice show as text)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def log_rows(node: Node, transfer_id: str) -> list[dict[str, Any]]:
    found = imports.require(node.db, transfer_id)
    rows = imports.students(node.db, found.import_id)
    sent: dict[str, dict[str, str]] = {}
    if any(s.sent_given_name is None for s in rows):  # previewed before the log kept them: the manifest has them
        row = store.require(node.db, found.transfer_id, local_domain=node.config.node.domain)
        sent = {m.sis_id: sent_values(m) for m in verified_manifest(node, row).students}
    out = []
    for s in rows:
        incoming = sent.get(s.sender_sis_id) or _kept_at_preview(s)
        status = {"imported": "Imported with changes" if s.changed else "Imported", "skipped": "Skipped",
                  "failed": "Failed"}.get(s.result or "", "Not run")  # fmt: skip
        score_status = (
            "Not run" if s.result is None else f"Imported {s.scores}" if s.result == "imported" and s.scores
            else "No scores" if s.result == "imported" else "Skipped"
        )  # fmt: skip
        out.append({
            "FirstName": incoming["sent_given_name"], "LastName": incoming["sent_family_name"],
            "Grade": incoming["sent_grade"],
            "SourceStudentId": s.sender_sis_id, "DestinationStudentId": s.destination_sis_id or "",
            "SourceStateId": incoming["sent_state_id"], "DestinationStateId": s.destination_state_id or "",
            "SourceUsername": incoming["sent_username"], "DestinationUsername": s.destination_username or "",
            "SourceEmail": incoming["sent_email"], "DestinationEmail": s.destination_email or "",
            "SourceImportStatus": status, "ScoreImportStatus": score_status, "DocumentCount": s.documents,
            "Reason": s.result_reason or "",
        })  # fmt: skip
    return out


def _kept_at_preview(s: ImportStudent) -> dict[str, str]:
    return {"sent_given_name": s.sent_given_name or "", "sent_family_name": s.sent_family_name or "",
            "sent_grade": s.sent_grade or "", "sent_state_id": s.sent_state_id or "",
            "sent_username": s.sent_username or "", "sent_email": s.sent_email or ""}  # fmt: skip


def write_csv(node: Node, transfer_id: str, path: Path) -> int:
    """Write the log to ``path``, outside the node's home (node.operator_files); it replaces a file there."""
    target = outside_home(node, path, option="--csv", example="~/import-log.csv")
    rows = log_rows(node, transfer_id)
    with private_file(target, option="--csv", exclusive=False, text=True) as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_COLUMNS)
        writer.writeheader()
        writer.writerows({column: spreadsheet_cell(value) for column, value in row.items()} for row in rows)
    return len(rows)


def completed(node: Node) -> list[dict[str, Any]]:
    """Imports that ran, newest first: school, date, students, status (and the reference to quote)."""
    return [
        {"transfer_id": i.transfer_id, "from": i.source_name, "source_school": i.source_school,
         "school": i.school_name or "", "date": i.finished_at, "students": f"{i.students_imported} of "
         f"{i.students_total}", "status": i.result, "reference": i.reference}
        for i in imports.list_imports(node.db) if i.result is not None
    ]  # fmt: skip
