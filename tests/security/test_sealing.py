"""Sealed secrets open only with the server secret and the context they were sealed for;
issued access key pairs have AWS's shapes and llmtrail's prefix."""

from __future__ import annotations

import base64
import pickle
import re
import secrets

import pytest

from llmtrail.errors import LlmtrailError
from llmtrail.security.sealing import Sealer, SealError, generate_access_key_pair

SECRET = secrets.token_bytes(48)
CONTEXT = "aws-secret/3f2a9c01b7d4"


@pytest.mark.parametrize("plaintext", ["", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "é€🔑" * 50])
def test_round_trip(plaintext: str) -> None:
    sealer = Sealer(SECRET)
    token = sealer.seal(plaintext, CONTEXT)
    assert plaintext not in token or plaintext == ""
    assert Sealer(SECRET).open(token, CONTEXT) == plaintext  # a new server, same secret


def test_each_seal_is_fresh() -> None:
    sealer = Sealer(SECRET)
    tokens = {sealer.seal("same secret", CONTEXT) for _ in range(20)}
    assert len(tokens) == 20
    assert {sealer.open(t, CONTEXT) for t in tokens} == {"same secret"}


def test_wrong_server_secret() -> None:
    token = Sealer(SECRET).seal("the secret access key", CONTEXT)
    with pytest.raises(SealError, match="another server secret"):
        Sealer(secrets.token_bytes(48)).open(token, CONTEXT)


def test_wrong_context() -> None:
    token = Sealer(SECRET).seal("the secret access key", CONTEXT)
    with pytest.raises(SealError):
        Sealer(SECRET).open(token, "aws-secret/someoneelse")


def test_every_altered_byte_is_caught() -> None:
    sealer = Sealer(SECRET)
    token = sealer.seal("the secret access key", CONTEXT)
    raw = base64.urlsafe_b64decode(token[3:])
    for i in range(len(raw)):
        for bit in (0x01, 0x80):
            altered = bytearray(raw)
            altered[i] ^= bit
            forged = "v1." + base64.urlsafe_b64encode(bytes(altered)).decode()
            with pytest.raises(SealError):
                sealer.open(forged, CONTEXT)
    for forged in (token[:-4], token + "AAAA", token[:3] + token[7:]):
        with pytest.raises(SealError):
            sealer.open(forged, CONTEXT)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "v1.",
        "v1.!!!!",
        "v2." + "A" * 60,
        "not a token",
        "v1." + "A" * 8,
        "v1.é",
        "v1." + "A" * 70000,
    ],
)
def test_garbage_is_a_seal_error(token: str) -> None:
    with pytest.raises(SealError):
        Sealer(SECRET).open(token, CONTEXT)


def test_seal_error_is_llmtrails_and_pickles() -> None:
    try:
        Sealer(SECRET).open("v1.AAAA", CONTEXT)
    except SealError as exc:
        assert isinstance(exc, LlmtrailError)
        copy = pickle.loads(pickle.dumps(exc))
        assert type(copy) is SealError and copy.args == exc.args


def test_empty_server_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        Sealer(b"")


def test_access_key_pairs_have_aws_shapes() -> None:
    pairs = [generate_access_key_pair() for _ in range(500)]
    for access_key_id, secret_access_key in pairs:
        assert re.fullmatch(r"LTAK[A-Z2-7]{16}", access_key_id)
        assert re.fullmatch(r"[A-Za-z0-9+/]{40}", secret_access_key)
    assert len({a for a, _ in pairs}) == len(pairs)
    assert len({s for _, s in pairs}) == len(pairs)
    # the secret seals and opens like any other
    sealer = Sealer(SECRET)
    akid, secret_key = pairs[0]
    assert sealer.open(sealer.seal(secret_key, f"aws-secret/{akid}"), f"aws-secret/{akid}") == (
        secret_key
    )
