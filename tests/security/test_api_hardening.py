"""The hardening issue's in-process cases: misspelt options, scopes given as a string,
bad modes in the config, and a flood of junk tokens before genuine ones."""

from __future__ import annotations

import base64
import json
import secrets
import time
from datetime import timedelta
from typing import Any

import pytest

from authx import AuthX, AuthXConfig
from authx.exceptions import AuthXException, BadConfigurationError
from authx.schema import RequestToken
from authx.scopes import has_required_scopes
from tests.security.corpus import b64, sign_hmac

SECRET = "security-tests-secret-" + "s" * 42


def make_auth(**settings: Any) -> AuthX[Any]:
    return AuthX(config=AuthXConfig(JWT_SECRET_KEY=SECRET, **settings))


# 10. Unknown keyword arguments ------------------------------------------------------


@pytest.mark.parametrize("method", ["create_access_token", "create_refresh_token"])
def test_misspelt_option_is_a_type_error(method: str) -> None:
    """``expires=`` (for ``expiry=``) silently made a 15-minute token; it must fail."""
    auth = make_auth()
    create = getattr(auth, method)
    with pytest.raises(TypeError):
        create("u", expires=timedelta(seconds=1))
    with pytest.raises(TypeError):
        create("u", scope=["admin"])
    # The right spelling is honoured.
    exp = auth._decode_token(create("u", expiry=timedelta(seconds=30))).expires_at
    assert exp == pytest.approx(time.time() + 30, abs=5)


# 11. Smaller ones -------------------------------------------------------------------


def test_a_string_is_not_a_list_of_scopes() -> None:
    """``"admin:*"`` read as a list is ``["a", "d", "m", ...]``: it grants scope "a"."""
    try:
        granted = has_required_scopes(["a"], "admin:*")  # type: ignore[arg-type]
    except TypeError:
        return
    assert granted is False


def test_a_list_of_scopes_still_works() -> None:
    assert has_required_scopes(["admin:users"], ["admin:*"]) is True
    assert has_required_scopes(["admin:*"], ["admin"]) is False


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("JWT_WS_REJECTION", "closed"),
        ("JWT_WS_REJECTION", "DENY"),
        ("JWT_WS_CONNECTION_LIMIT", "close-oldest"),
    ],
)
def test_unknown_mode_is_a_bad_configuration(setting: str, value: str) -> None:
    with pytest.raises(BadConfigurationError) as caught:
        AuthXConfig(JWT_SECRET_KEY=SECRET, **{setting: value})
    assert setting in str(caught.value)


def test_unknown_mode_from_the_environment_is_a_bad_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JWT_WS_REJECTION", "closed")
    with pytest.raises(BadConfigurationError):
        AuthXConfig(JWT_SECRET_KEY=SECRET)


def test_bad_configuration_never_shows_the_key() -> None:
    key = "a-secret-that-must-not-be-shown-" + secrets.token_hex(16)
    with pytest.raises(BadConfigurationError) as caught:
        AuthXConfig(JWT_SECRET_KEY=key, JWT_WS_REJECTION="closed")
    assert key not in str(caught.value)
    assert key not in repr(caught.value)


# 9. Junk tokens do not break later genuine tokens (in process) ----------------------


def _hs256(header: dict[str, Any], claims: dict[str, Any], secret: str = SECRET) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(sign_hmac(signing_input.encode(), secret.encode()))}"


def test_junk_flood_does_not_break_genuine_tokens() -> None:
    auth = make_auth()
    genuine = auth.create_access_token("alice", headers={"kid": "k1"})
    claims = json.loads(base64.urlsafe_b64decode(genuine.split(".")[1] + "=="))
    junk: list[str] = []
    for i in range(256):
        header = {"alg": "HS256", "typ": "JWT", "kid": f"junk-{i}"}
        junk.append(_hs256(header, claims, secret="wrong-" + SECRET))  # wrong key
        junk.append(_hs256({"alg": "HS256", "typ": "JWT", "kid": "k2"}, {"sub": i}, "x" * 64))
        junk.append(_hs256({"alg": f"XX{i}"}, claims))  # unknown algorithm, right key
        junk.append(b64(json.dumps({"alg": "HS256", "n": i}).encode()) + ".e30.")
    for token in junk:
        with pytest.raises(AuthXException):
            auth.verify_token(RequestToken.found(token, "headers"))
    # The genuine token, a token with a header first seen in the junk, and a new one.
    later = [
        genuine,
        auth.create_access_token("bob", headers={"kid": "k2"}),
        auth.create_access_token("carol", headers={"kid": "never-seen"}),
        auth.create_access_token("dave"),
    ]
    for token in later:
        for _ in range(3):
            payload = auth.verify_token(RequestToken.found(token, "headers"))
            assert payload.sub in {"alice", "bob", "carol", "dave"}
    # And junk is still junk afterwards.
    for token in junk[:50]:
        with pytest.raises(AuthXException):
            auth.verify_token(RequestToken.found(token, "headers"))
