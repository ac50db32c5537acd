"""Preparing keys: which key verifies which algorithm, and what a wrong setting is told.

A configuration mistake is a BadConfigurationError whose message names the
setting (never the key material); a short HMAC secret warns, pointing at the
caller's line.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import pytest
from core_support import OTHER_SECRET, SECRET, get_access, key_pair, short_secret
from jwt.algorithms import get_default_algorithms

from authx import AuthX, AuthXConfig
from authx.exceptions import BadConfigurationError, InsecureKeyWarning, TokenInvalidSignatureError
from authx.token import create_token, decode_token

#: What PyJWT supports, less "none".
ALGORITHM_NAMES = str(sorted(set(get_default_algorithms()) - {"none"}))
PEM_GARBAGE = "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n"


def message_of(build: Any) -> str:
    with pytest.raises(BadConfigurationError) as raised:
        build()
    return raised.value.message


# Messages that name the setting ---------------------------------------------------------------


def test_unsupported_signing_algorithm() -> None:
    assert message_of(lambda: create_token("a", SECRET, algorithm="HS257")) == (
        "JWT_ALGORITHM 'HS257' is not supported"
    )


def test_unsupported_decode_algorithm_lists_the_supported_ones() -> None:
    token = create_token("a", SECRET)
    assert message_of(lambda: decode_token(token, SECRET, algorithms=["HS256", "XX1"])) == (
        f"JWT_DECODE_ALGORITHMS 'XX1' is not supported, use one of {ALGORITHM_NAMES}"
    )


def test_decode_algorithms_of_another_key_family_are_refused() -> None:
    token = create_token("a", SECRET)
    assert message_of(lambda: decode_token(token, SECRET, algorithms=["HS256", "RS256"])) == (
        "JWT_DECODE_ALGORITHMS mixes RS256 with JWT_ALGORITHM HS256; one key family serves both"
    )


def test_hmac_without_a_secret() -> None:
    assert message_of(lambda: create_token("a", "", algorithm="HS384")) == (
        "JWT_ALGORITHM HS384 requires a key, please set JWT_SECRET_KEY"
    )


@pytest.mark.parametrize(("secret", "hint"), [(None, ""), (SECRET, " (JWT_SECRET_KEY")])
def test_asymmetric_without_a_pem_key(secret: str | None, hint: str) -> None:
    message = message_of(
        lambda: AuthX(config=AuthXConfig(JWT_ALGORITHM="ES384", JWT_SECRET_KEY=secret))
    )
    expected = (
        "JWT_ALGORITHM ES384 is asymmetric and requires a PEM key, "
        "please set JWT_PRIVATE_KEY and JWT_PUBLIC_KEY"
    )
    if secret is None:
        assert message == expected
    else:
        assert message == expected + " (JWT_SECRET_KEY is only used by HS256/HS384/HS512)"
    assert hint in message


@pytest.mark.parametrize(
    ("settings", "setting"),
    [
        ({"JWT_ALGORITHM": "RS256", "JWT_PRIVATE_KEY": PEM_GARBAGE}, "JWT_PRIVATE_KEY"),
        ({"JWT_ALGORITHM": "RS256", "JWT_PUBLIC_KEY": PEM_GARBAGE}, "JWT_PUBLIC_KEY"),
        (
            {
                "JWT_ALGORITHM": "ES256",
                "JWT_PUBLIC_KEY": key_pair("ES256")[1],
                "JWT_PREVIOUS_PUBLIC_KEY": PEM_GARBAGE,
            },
            "JWT_PREVIOUS_PUBLIC_KEY",
        ),
        ({"JWT_SECRET_KEY": key_pair("RS256")[1]}, "JWT_SECRET_KEY"),
        (
            {"JWT_SECRET_KEY": SECRET, "JWT_PREVIOUS_SECRET_KEY": key_pair("RS256")[1]},
            "JWT_PREVIOUS_SECRET_KEY",
        ),
    ],
)
def test_invalid_key_names_its_setting_and_not_the_key(
    settings: dict[str, Any], setting: str
) -> None:
    message = message_of(lambda: AuthX(config=AuthXConfig(**settings)))
    algorithm = settings.get("JWT_ALGORITHM", "HS256")
    assert re.fullmatch(rf"{setting} is not a valid key for {algorithm} \((\w+)\)", message)
    assert "NoneType" not in message
    assert "bm90IGEga2V5" not in message
    assert "BEGIN" not in message


# Which keys verify --------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
async def test_private_key_alone_verifies_with_its_public_half(algorithm: str) -> None:
    private, _ = key_pair(algorithm)
    auth = AuthX(config=AuthXConfig(JWT_ALGORITHM=algorithm, JWT_PRIVATE_KEY=private))
    response = await get_access(auth, auth.create_access_token("alice"))
    assert (response.status_code, response.json()["sub"]) == (200, "alice")
    stranger_private, _ = key_pair(algorithm, 1)
    stranger = AuthX(config=AuthXConfig(JWT_ALGORITHM=algorithm, JWT_PRIVATE_KEY=stranger_private))
    response = await get_access(auth, stranger.create_access_token("mallory"))
    assert response.json()["error_type"] == "TokenInvalidSignatureError"


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
async def test_previous_public_key_verifies_old_tokens(algorithm: str) -> None:
    old_private, old_public = key_pair(algorithm, 1)
    new_private, new_public = key_pair(algorithm, 0)
    old = AuthX(config=AuthXConfig(JWT_ALGORITHM=algorithm, JWT_PRIVATE_KEY=old_private))
    rotated = AuthX(
        config=AuthXConfig(
            JWT_ALGORITHM=algorithm,
            JWT_PRIVATE_KEY=new_private,
            JWT_PUBLIC_KEY=new_public,
            JWT_PREVIOUS_PUBLIC_KEY=old_public,
        )
    )
    for signer, sub in ((old, "old"), (rotated, "new")):
        response = await get_access(rotated, signer.create_access_token(sub))
        assert (response.status_code, response.json()["sub"]) == (200, sub)
    stranger = AuthX(
        config=AuthXConfig(JWT_ALGORITHM=algorithm, JWT_PRIVATE_KEY=key_pair(algorithm, 2)[0])
    )
    response = await get_access(rotated, stranger.create_access_token("mallory"))
    assert response.json()["error_type"] == "TokenInvalidSignatureError"


def test_previous_secret_verifies_every_allowed_hmac_algorithm() -> None:
    auth = AuthX(
        config=AuthXConfig(
            JWT_SECRET_KEY=SECRET,
            JWT_PREVIOUS_SECRET_KEY=OTHER_SECRET,
            JWT_DECODE_ALGORITHMS=["HS256", "HS512"],
        )
    )
    for algorithm in ("HS256", "HS512"):
        for secret in (SECRET, OTHER_SECRET):
            token = create_token("alice", secret, algorithm=algorithm, type="access")
            assert auth._decode_token(token).sub == "alice"
    with pytest.raises(TokenInvalidSignatureError):
        auth._decode_token(create_token("mallory", "third-secret-" + "t" * 64, algorithm="HS512"))


def test_verifier_without_a_signing_key_says_which_setting_is_missing() -> None:
    _, public = key_pair("RS256")
    auth = AuthX(config=AuthXConfig(JWT_ALGORITHM="RS256", JWT_PUBLIC_KEY=public))
    assert message_of(lambda: auth.create_access_token("alice")) == (
        "JWT_ALGORITHM RS256 needs JWT_PRIVATE_KEY to create tokens"
    )


# Short secrets -----------------------------------------------------------------------------------


def test_short_secret_warning_names_the_setting() -> None:
    secret = short_secret()
    with pytest.warns(InsecureKeyWarning) as record:
        create_token("alice", secret)
    assert len(record) == 1
    assert str(record[0].message).startswith("JWT_SECRET_KEY: The HMAC key is 16 bytes long")


def test_short_previous_secret_warns_under_its_own_name() -> None:
    with pytest.warns(InsecureKeyWarning) as record:
        AuthX(config=AuthXConfig(JWT_SECRET_KEY=SECRET, JWT_PREVIOUS_SECRET_KEY=short_secret()))
    assert [str(w.message).split(":")[0] for w in record] == ["JWT_PREVIOUS_SECRET_KEY"]


def test_short_signing_secret_warns_once_even_if_it_also_verifies() -> None:
    with pytest.warns(InsecureKeyWarning) as record:
        AuthX(config=AuthXConfig(JWT_SECRET_KEY=short_secret(), JWT_DECODE_ALGORITHMS=["HS256"]))
    assert [str(w.message).split(":")[0] for w in record] == ["JWT_SECRET_KEY"]


def test_long_enough_secrets_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AuthX(config=AuthXConfig(JWT_SECRET_KEY=SECRET, JWT_PREVIOUS_SECRET_KEY=OTHER_SECRET))


def test_short_signing_secret_warns_even_if_it_only_signs() -> None:
    """HS512 signs (64 bytes wanted), HS256 verifies (32 are enough): 40 bytes warn once."""
    secret = "x" * 24 + short_secret()
    with pytest.warns(InsecureKeyWarning) as record:
        AuthX(
            config=AuthXConfig(
                JWT_SECRET_KEY=secret, JWT_ALGORITHM="HS512", JWT_DECODE_ALGORITHMS=["HS256"]
            )
        )
    (warning,) = record
    # The complaint is PyJWT's: the setting, then why (the key's length and the hash).
    assert str(warning.message).startswith("JWT_SECRET_KEY: The HMAC key is 40 bytes long")
    assert "SHA512" in str(warning.message)


def test_short_verifying_secret_warning_says_why() -> None:
    with pytest.warns(InsecureKeyWarning) as record:
        AuthX(config=AuthXConfig(JWT_SECRET_KEY=SECRET, JWT_PREVIOUS_SECRET_KEY=short_secret()))
    (warning,) = record
    assert str(warning.message).startswith("JWT_PREVIOUS_SECRET_KEY: The HMAC key is 16 bytes")
