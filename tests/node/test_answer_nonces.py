"""node.signed_http.AnswerNonces: the nonces a node's signed answers carry."""

from __future__ import annotations

from node.signed_http import AnswerNonces
from protocol.signature_profile import NONCE_PATTERN


def test_every_nonce_is_fresh_and_of_the_profiles_form() -> None:
    nonces = AnswerNonces()
    drawn = [nonces.next() for _ in range(256 * 3 + 7)]  # past three batches
    assert len(set(drawn)) == len(drawn)
    assert all(NONCE_PATTERN.fullmatch(n) and len(n) == 24 for n in drawn)  # 18 random bytes: 144 bits


def test_two_nodes_draw_different_nonces() -> None:
    assert len({AnswerNonces().next() for _ in range(50)}) == 50
