"""The provenance an import writes for each assessment result: encoded once per run, the same JSON text."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from node.import_run import origin_json_for

TEXT = st.text(max_size=30)


@given(TEXT, TEXT, TEXT, TEXT)
def test_the_origin_text_is_what_json_dumps_writes(
    sender: str, envelope: str, received: str, record: str
) -> None:
    origin = {
        "kind": "import",
        "sender": sender,
        "envelope": envelope,
        "record_id": record,
        "received": received,
    }
    assert origin_json_for(sender, envelope, received)(record) == json.dumps(origin)
