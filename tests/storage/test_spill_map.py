"""SpillMap behaves as a dict does (insertion order included), SpillList as a list that is only extended, and
their scratch file goes when it closes."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage.spill_map import SPILL, SpillFile
from storage.temp_files import sweep, writer_of

_KEYS = st.sampled_from(["a", "b", "c", "", "é", "x" * 50])
_VALUES = st.none() | st.integers(-(2**40), 2**40) | st.text(max_size=5) | st.booleans() | st.tuples(
    st.text(max_size=3), st.none() | st.integers(), st.lists(st.text(max_size=3), max_size=3))
_PAIRS = st.lists(st.tuples(_KEYS, _VALUES), max_size=4)
_OPS = st.lists(
    st.tuples(st.sampled_from(["set", "setdefault", "get", "del", "in"]), _KEYS, _VALUES)
    | st.tuples(st.sampled_from(["update", "setdefault_many", "get_many"]), st.just(""), _PAIRS),
    max_size=40,
)


@given(_OPS)
def test_a_spill_map_answers_as_a_dict(ops: list[tuple[str, str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as folder, SpillFile(Path(folder)) as spill:
        mapping, model = spill.mapping("m"), {}
        for op, key, value in ops:
            if op == "set":
                mapping[key] = model[key] = value
            elif op == "setdefault":
                assert mapping.setdefault(key, value) == model.setdefault(key, value)
            elif op == "get":
                assert mapping.get(key, "none") == model.get(key, "none")
            elif op == "update":
                mapping.update(value)
                model.update(value)
            elif op == "setdefault_many":  # a key given twice keeps its first value, as one call at a time
                assert mapping.setdefault_many(value) == [model.setdefault(k, v) for k, v in value]
            elif op == "get_many":
                assert mapping.get_many(k for k, _ in value) == {k: model[k] for k, _ in value if k in model}
            elif op == "del":
                if key in model:
                    del mapping[key], model[key]
                else:
                    with pytest.raises(KeyError):
                        del mapping[key]
            else:
                assert (key in mapping) == (key in model)
        assert list(mapping) == list(model)  # insertion order, replacing a value keeps its place
        assert list(mapping.values()) == list(model.values())
        assert len(mapping) == len(model)
        assert dict(mapping.items()) == model


def test_many_keys_are_looked_up_in_parts(tmp_path: Path) -> None:
    with SpillFile(tmp_path) as spill:
        mapping = spill.mapping("m")
        mapping.update((str(n), n) for n in range(0, 2400, 2))
        assert mapping.get_many(str(n) for n in range(2400)) == {str(n): n for n in range(0, 2400, 2)}
        assert mapping.setdefault_many([(str(n), -n) for n in range(1195, 1205)]) == [
            n if n % 2 == 0 else -n for n in range(1195, 1205)
        ]


@given(st.lists(st.lists(_VALUES, max_size=5), max_size=6))
def test_a_spill_list_gives_back_what_was_added_in_order(extends: list[list[Any]]) -> None:
    with tempfile.TemporaryDirectory() as folder, SpillFile(Path(folder)) as spill:
        spilled, model = spill.list("l"), []
        for values in extends:
            spilled.extend(iter(values))  # any iterable, taken once
            model.extend(values)
            assert list(spilled) == model and len(spilled) == len(model)


def test_the_scratch_file_names_its_writer_and_goes_on_close(tmp_path: Path) -> None:
    with SpillFile(tmp_path) as spill:
        spill.mapping("m")["k"] = ("v", 1)
        (path,) = tmp_path.iterdir()
        assert path.name.startswith(f"{SPILL}-") and writer_of(path.name) is not None
        assert sweep(tmp_path, SPILL, min_age=0) == 0  # its writer (this process) is running
    assert list(tmp_path.iterdir()) == []


def test_it_goes_when_the_work_fails_too(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), SpillFile(tmp_path) as spill:
        spill.mapping("m")["k"] = 1
        raise RuntimeError("the import failed")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["", "1a", "a b", "a;drop", "A"])
def test_mapping_names_are_plain_identifiers(tmp_path: Path, name: str) -> None:
    with SpillFile(tmp_path) as spill, pytest.raises(ValueError):
        spill.mapping(name)


def test_a_name_is_used_once_by_mappings_and_lists_alike(tmp_path: Path) -> None:
    with SpillFile(tmp_path) as spill:
        spill.mapping("m")
        spill.list("l")
        for make in (spill.mapping, spill.list):
            for name in ("m", "l"):
                with pytest.raises(ValueError):
                    make(name)
