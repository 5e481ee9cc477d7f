from hypothesis import given
from hypothesis import strategies as st

from protocol.name_similarity import fold_compact
from protocol.nicknames import GROUPS, NICKNAME_GROUPS, equivalent, formal_of, groups_of

NAMES = sorted(NICKNAME_GROUPS)


def test_table_is_large_and_well_formed() -> None:
    assert len(GROUPS) >= 300
    heads = [group[0] for group in GROUPS]
    assert len(heads) == len(set(heads)), "each formal name heads one group"
    for group in GROUPS:
        assert len(group) >= 2
        assert len(set(group)) == len(group), group
        for name in group:
            assert name == fold_compact(name) and name.isascii() and name.isalpha(), name


@given(st.sampled_from(NAMES), st.sampled_from(NAMES))
def test_equivalence_is_symmetric(a: str, b: str) -> None:
    assert equivalent(a, b) == equivalent(b, a)
    assert not equivalent(a, a)


@given(st.sampled_from(GROUPS))
def test_every_member_is_equivalent_to_its_formal_name(group: tuple[str, ...]) -> None:
    head, *others = group
    for name in others:
        assert equivalent(name, head)
        assert head in groups_of(name)


def test_common_english_and_spanish_nicknames() -> None:
    pairs = [("bill", "william"), ("liam", "william"), ("bob", "robert"), ("liz", "elizabeth"), ("beth", "elizabeth"),
             ("pepe", "jose"), ("paco", "francisco"), ("pancho", "francisco"), ("lupe", "guadalupe"),
             ("chuy", "jesus"), ("memo", "guillermo"), ("peggy", "margaret")]  # fmt: skip
    for short, formal in pairs:
        assert equivalent(short, formal), (short, formal)
        assert formal_of(short, formal) == formal


def test_equivalence_is_not_transitive() -> None:
    # "Chris" stands for both; Christopher and Christina are different children.
    assert equivalent("chris", "christopher") and equivalent("chris", "christina")
    assert not equivalent("christopher", "christina")
    assert groups_of("chris") == tuple(sorted(groups_of("chris")))
    assert groups_of("zzz") == ()
    assert formal_of("will", "billy") is None
