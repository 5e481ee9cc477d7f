"""Every error code has an HTTP status in node/http_errors.py and a line in spec/errors.md."""

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

from node.http_errors import HTTP_LAYER_CODES, status_for
from protocol import SatchelError, all_error_classes

ROOT = Path(__file__).resolve().parent.parent
CODE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$|^not_found$|^conflict$")


def _import_everything() -> None:
    for package in ("protocol", "crypto", "storage", "node", "cli"):
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
            importlib.import_module(info.name)


_import_everything()
CLASSES = [
    c
    for c in all_error_classes()
    if c.__module__.split(".")[0] in {"protocol", "crypto", "storage", "node", "cli"}
]
DOCUMENTED = set(
    re.findall(r"^\| `([a-z0-9_.]+)` \|", (ROOT / "spec" / "errors.md").read_text(), re.MULTILINE)
)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_code_is_wellformed_mapped_and_documented(cls: type[SatchelError]) -> None:
    assert CODE.match(cls.code), cls.code
    assert status_for(cls.code) is not None, f"{cls.code} has no HTTP status in node/http_errors.py"
    assert cls.code in DOCUMENTED, f"{cls.code} is not documented in spec/errors.md"


def test_no_stale_documentation() -> None:
    codes = {c.code for c in CLASSES} | set(HTTP_LAYER_CODES)
    assert DOCUMENTED - codes == set(), "spec/errors.md documents codes nothing raises"
    assert set(HTTP_LAYER_CODES) <= DOCUMENTED


def test_catalog_is_not_empty() -> None:
    assert len(CLASSES) > 10


def test_codes_named_by_the_retry_rules_exist() -> None:
    """A misspelt code in a retry list matches nothing, and turns "later" into "never" (it happened once:
    'transfers.disabled')."""
    from node.outbox_worker import RETRIED_FOR_REQUESTS
    from protocol.transfer_states import RETRYABLE_CODES

    known = {c.code for c in CLASSES}
    assert (RETRYABLE_CODES | RETRIED_FOR_REQUESTS) - known == set()
