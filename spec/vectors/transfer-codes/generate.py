"""Generate spec/vectors/transfer-codes/vectors.json from the code (never edit the JSON by hand).

    .venv/bin/python spec/vectors/transfer-codes/generate.py          # rewrite vectors.json
    .venv/bin/python spec/vectors/transfer-codes/generate.py --check  # exit 1 if it is stale

Transfer codes (spec/codes.md §7): ``parsing`` holds typed texts and what §7.1 makes of them (the code's
canonical and grouped forms and the source domain, or the error code and field); ``claims`` holds §7.2's
derivation step by step (password, salt, Argon2id key, code_id, proof) and the §7.5 claim body;
``proof_checks`` holds proofs a source must refuse. Plain code parsing (§5) is vectors/envelope/codes.json's.
Codes and nonces are fixed here; nothing else is random, so the file is the same every run. Each claim
case costs one Argon2id at m = 64 MiB (about 0.3 s): keep them few.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import sys
from pathlib import Path
from typing import Any

from crypto import Code, check_transfer_code_proof, parse_code, transfer_code_credentials, transfer_code_proof
from crypto._claims import _ID, _PROOF, _SALT, CLAIM_MEMORY_KIB, CLAIM_TIME_COST
from crypto._codes import check_symbol
from protocol import SatchelError
from protocol.json_strict import dumps_canonical
from protocol.transfer_code import MAX_INPUT, parse_transfer_code

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # spec/vectors, for vector_kit
import vector_kit

OUT = Path(__file__).resolve().parent / "vectors.json"

# The worked example of spec/codes.md §4 and §7.1, so a reader can follow the prose with the file open.
EXAMPLE = "7K2Q-M9XD-RT4B-J"
SOURCE = "springfield.k12.example"
# A code whose data holds 0 and 1, typed below with the look-alikes O, I and L (§5 step 4).
LOOKALIKE_DATA = "10GH0ST1NK5V"
LOOKALIKE = f"{LOOKALIKE_DATA[:4]}-{LOOKALIKE_DATA[4:8]}-{LOOKALIKE_DATA[8:]}-{check_symbol(LOOKALIKE_DATA)}"
# The example code with its check character changed: §4 catches every single wrong character.
TYPO = EXAMPLE[:-1] + ("K" if EXAMPLE[-1] != "K" else "M")
# libsodium's crypto_pwhash is Argon2id version 1.3 (0x13) with parallelism 1; spec/envelope.md §8.3.
ARGON2_VERSION = 0x13
ARGON2_PARALLELISM = 1
KEY_LENGTH = 32


def nonce(label: str, length: int) -> bytes:
    """A fixed stand-in for the claim's fresh random nonce (a node draws it from os.urandom)."""
    return hashlib.shake_256(b"satchel/v1/vectors/transfer-codes/nonce/" + label.encode()).digest(length)


def b64url(data: bytes) -> str:
    """base64url without padding, as every byte string travels (spec/README.md)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _parsing_cases() -> list[tuple[str, str, str]]:
    at_limit = f"{EXAMPLE}@{SOURCE}"
    return [
        ("grouped", "the form the source shows: the grouped code, @, the domain", f"{EXAMPLE}@{SOURCE}"),
        ("lower-case-with-spaces", "case and spaces, inside the code and around @, do not matter",
         f"  7k2q m9xd rt4b j @ {SOURCE}\t"),
        ("full-width-at", "NFKC turns the full-width at sign U+FF20 into @ (step 2)", f"{EXAMPLE}\uff20{SOURCE}"),
        ("full-width-letters", "NFKC turns full-width letters in code and domain into ASCII",
         "\uff17\uff2b\uff12\uff31-M9XD-RT4B-J@\uff53\uff50\uff52\uff49\uff4e\uff47field.k12.example"),
        ("look-alikes", "O is read as 0, I and L as 1 in the code part (§5 step 4)",
         f"{LOOKALIKE.replace('0', 'O').replace('1', 'l', 1).replace('1', 'I')}@{SOURCE}"),
        ("domain-upper-case-trailing-dot", "the domain is lowered and its trailing dots removed (step 4)",
         f"{EXAMPLE}@Springfield.K12.Example."),
        ("domain-with-spaces", "white space anywhere in the domain is removed (step 4)",
         f"{EXAMPLE}@springfield .k12. example"),
        ("international-domain-ascii-form", "an international name in its xn-- form is a domain",
         f"{EXAMPLE}@xn--mnchen-3ya.k12.example"),
        ("at-limit", f"{MAX_INPUT} characters, the padding being white space in the domain, is accepted",
         at_limit[:-len(SOURCE)] + " " * (MAX_INPUT - len(at_limit)) + SOURCE),
        ("too-long", f"{MAX_INPUT + 1} characters is refused before anything else (step 1)",
         at_limit[:-len(SOURCE)] + " " * (MAX_INPUT + 1 - len(at_limit)) + SOURCE),
        ("no-at", "a plain code: the destination would not know whom to ask (step 3)", EXAMPLE),
        ("nothing-before-at", "nothing but white space before @ (step 3)", f"  \t@{SOURCE}"),
        ("nothing-after-at", "an empty domain (step 4)", f"{EXAMPLE}@"),
        ("last-at-splits-domain-part", "split at the last @: what follows the first one is part of the code",
         f"{EXAMPLE}@evil.example@{SOURCE}"),
        ("last-at-splits-empty-domain", "a trailing @ leaves an empty domain, whatever came before it",
         f"{EXAMPLE}@{SOURCE}@"),
        ("at-inside-code", "@ is not in the code alphabet: the code part is malformed (§5 step 5)",
         f"7K2Q@M9XD-RT4B-J@{SOURCE}"),
        ("domain-single-label", "a domain has at least two labels", f"{EXAMPLE}@localhost"),
        ("domain-underscore", "_ is not allowed in a domain", f"{EXAMPLE}@spring_field.k12.example"),
        ("domain-last-label-digit", "the last label starts with a letter", f"{EXAMPLE}@springfield.k12.123"),
        ("domain-last-label-hyphen", "no label ends with -, the last one included", f"{EXAMPLE}@springfield.k12-"),
        ("domain-unicode", "an international name must be written in its xn-- form",
         f"{EXAMPLE}@m\u00fcnchen.k12.example"),
        ("code-typo", "the check character is wrong: code.typo, which costs no attempt (step 5)",
         f"{TYPO}@{SOURCE}"),
        ("code-typo-and-bad-domain", "the domain is checked (step 4) before the code (step 5)",
         f"{TYPO}@localhost"),
        ("code-too-short", "a valid domain after a code with a character missing (§5 step 5)",
         f"{EXAMPLE[:-3]}-{EXAMPLE[-1]}@{SOURCE}"),
        ("code-part-at-limit", "the code part, spaces before the @ included, is 128 characters: accepted (step 5)",
         f"{EXAMPLE}{' ' * (128 - len(EXAMPLE))}@{SOURCE}"),
        ("code-part-over-limit", "the code part is 129 characters, though the whole text is under 400 (step 5)",
         f"{EXAMPLE}{' ' * (129 - len(EXAMPLE))}@{SOURCE}"),
    ]  # fmt: skip


def _parse(text: str) -> dict[str, Any]:
    try:
        parsed = parse_transfer_code(text, parse_code=parse_code)
    except SatchelError as exc:
        return {"error": exc.code, "field": exc.field}
    return {
        "code": parsed.code._kdf_input().decode("ascii"),
        "display": parsed.code.reveal(),
        "source_domain": parsed.source_domain,
    }


def _claim_cases() -> list[tuple[str, str, str, str, bytes]]:
    """(name, why, typed transfer code, destination, nonce)."""
    return [
        ("spec-example", "the code of spec/codes.md §4 made by the node of §7.1; a 16-byte nonce, as a node sends",
         f"{EXAMPLE}@{SOURCE}", "shelbyville.k12.example", nonce("spec-example", 16)),
        ("typed-loosely-longest-nonce",
         "typed with look-alikes, lower case, spaces, a full-width at sign and an upper-case domain: the password "
         "is the canonical data and the salt the normalised domain; the longest nonce (64 bytes)",
         f" {LOOKALIKE.lower().replace('0', 'o')} \uff20 Shelbyville.K12.Example. ", "springfield.k12.example",
         nonce("typed-loosely", 64)),
        ("same-code-other-source",
         "the code of spec-example made by another node: the source's domain salts the key, so code_id differs",
         f"{EXAMPLE}@capital.k12.example", "springfield.k12.example", nonce("other-source", 32)),
    ]  # fmt: skip


def _claim(name: str, why: str, text: str, destination: str, claim_nonce: bytes) -> dict[str, Any]:
    transfer_code = parse_transfer_code(text, parse_code=parse_code)
    code: Code = transfer_code.code
    source = transfer_code.source_domain
    password = code._kdf_input()
    salt_input = _SALT + b"\x00" + source.encode("ascii")
    salt = hashlib.blake2b(salt_input, digest_size=16).digest()
    # The intermediate values come from crypto._claims; the generator must agree with it, or the file lies.
    code_id, key = transfer_code_credentials(code, source)
    proof_input = _PROOF + b"\x00" + destination.encode("ascii") + b"\x00" + claim_nonce
    proof = transfer_code_proof(key, destination=destination, nonce=claim_nonce)
    assert proof == hmac.digest(key, proof_input, "sha256")
    assert check_transfer_code_proof(key, destination=destination, nonce=claim_nonce, proof=proof)
    body = dumps_canonical({"code_id": b64url(code_id), "nonce": b64url(claim_nonce), "proof": b64url(proof)})
    return {
        "name": name,
        "why": why,
        "transfer_code": text,
        "source_domain": source,
        "password_ascii": password.decode("ascii"),
        "password_hex": password.hex(),
        "salt_input_hex": salt_input.hex(),
        "salt_hex": salt.hex(),
        "argon2id": {
            "version": ARGON2_VERSION,
            "t": CLAIM_TIME_COST,
            "m_kib": CLAIM_MEMORY_KIB,
            "p": ARGON2_PARALLELISM,
            "length": KEY_LENGTH,
        },
        "key_hex": key.hex(),
        "code_id_hex": code_id.hex(),
        "code_id_b64url": b64url(code_id),
        "destination": destination,
        "nonce_hex": claim_nonce.hex(),
        "nonce_b64url": b64url(claim_nonce),
        "proof_input_hex": proof_input.hex(),
        "proof_hex": proof.hex(),
        "proof_b64url": b64url(proof),
        "body": body.decode("ascii"),
    }


def _proof_checks(claims: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Proofs of the first claim presented where they must fail: the key is right, the binding is not."""
    first = claims[0]
    key, proof = bytes.fromhex(first["key_hex"]), bytes.fromhex(first["proof_hex"])
    claim_nonce = bytes.fromhex(first["nonce_hex"])
    other_nonce = nonce("replayed", len(claim_nonce))
    checks = [
        ("another-destination",
         "the claim of spec-example sent by another district: the source checks the proof against the domain "
         "that signed the request, so a proof taken from someone else's claim is worthless",
         "capital.k12.example", claim_nonce),
        ("another-nonce", "the proof of spec-example with another nonce: a proof cannot be replayed",
         first["destination"], other_nonce),
    ]  # fmt: skip
    out = []
    for name, why, destination, check_nonce in checks:
        valid = check_transfer_code_proof(key, destination=destination, nonce=check_nonce, proof=proof)
        assert not valid
        expected = transfer_code_proof(key, destination=destination, nonce=check_nonce)
        out.append(
            {
                "name": name,
                "why": why,
                "claim": first["name"],
                "destination": destination,
                "nonce_hex": check_nonce.hex(),
                "proof_hex": proof.hex(),
                "expected_proof_hex": expected.hex(),
                "valid": valid,
            }
        )
    return out


def build() -> dict[str, Any]:
    claims = [_claim(*case) for case in _claim_cases()]
    return {
        "about": "spec/codes.md §7: transfer codes as typed (§7.1), claim derivation (§7.2) and claim bodies (§7.5)",
        "labels": {
            "salt": _SALT.decode("ascii"),
            "code_id": _ID.decode("ascii"),
            "proof": _PROOF.decode("ascii"),
        },
        "parsing": [{"name": name, "why": why, "text": text, "expect": _parse(text)}
                    for name, why, text in _parsing_cases()],
        "claims": claims,
        "proof_checks": _proof_checks(claims),
    }  # fmt: skip


def render() -> str:
    return vector_kit.render(build())


def main(argv: list[str]) -> int:
    return vector_kit.write_or_check(OUT, render(), argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
