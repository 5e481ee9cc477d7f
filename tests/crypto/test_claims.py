import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto import (
    check_transfer_code_proof,
    generate_code,
    parse_code,
    transfer_code_credentials,
    transfer_code_proof,
)
from protocol import InvalidInput

CODE = generate_code()


def test_both_sides_derive_the_same_credentials_and_the_proof_binds_destination_and_nonce() -> None:
    code_id, key = transfer_code_credentials(CODE, "a.example.org")
    again_id, again_key = transfer_code_credentials(parse_code(CODE.reveal()), "a.example.org")
    assert (code_id, key) == (again_id, again_key) and len(code_id) == 16
    nonce = b"n" * 16
    proof = transfer_code_proof(key, destination="b.example.org", nonce=nonce)
    assert check_transfer_code_proof(key, destination="b.example.org", nonce=nonce, proof=proof)
    assert not check_transfer_code_proof(key, destination="c.example.org", nonce=nonce, proof=proof)
    assert not check_transfer_code_proof(key, destination="b.example.org", nonce=b"m" * 16, proof=proof)


def test_the_source_domain_salts_the_key_and_another_code_differs() -> None:
    assert transfer_code_credentials(CODE, "a.example.org") != transfer_code_credentials(
        CODE, "b.example.org"
    )
    assert (
        transfer_code_credentials(generate_code(), "a.example.org")[0]
        != transfer_code_credentials(CODE, "a.example.org")[0]
    )


def test_the_code_never_appears_in_what_is_sent() -> None:
    code_id, key = transfer_code_credentials(CODE, "a.example.org")
    proof = transfer_code_proof(key, destination="b.example.org", nonce=b"x" * 16)
    for sent in (code_id, proof):
        assert CODE.reveal().replace("-", "").encode() not in sent


@given(st.binary(max_size=15) | st.binary(min_size=65, max_size=80))
def test_bad_nonces_are_refused(nonce: bytes) -> None:
    with pytest.raises(InvalidInput):
        transfer_code_proof(b"k" * 32, destination="b.example.org", nonce=nonce)
