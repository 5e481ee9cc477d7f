"""crypto's small public API loads its modules lazily; every public name still resolves, nothing else does."""

import importlib
import subprocess
import sys

import pytest

import crypto


def test_every_public_name_resolves_to_its_module() -> None:
    for name in crypto.__all__:
        value = getattr(crypto, name)
        assert value is getattr(importlib.import_module(value.__module__), name)
    assert sorted(dir(crypto)) == sorted(crypto.__all__)


def test_other_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError):
        crypto.not_a_thing  # noqa: B018


def test_opening_keys_does_not_load_the_envelope_code() -> None:
    code = "import sys; from crypto import IdentityKey; print('crypto._envelope_seal' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=".")
    assert loaded.stdout.strip() == "False"
