"""TokenPayload.decode and the scope helpers, called directly as an application would."""

from __future__ import annotations

import time
import types
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from core_support import SECRET, get_access, make_auth

import authx.schema
from authx import RequestToken, TokenPayload
from authx.exceptions import (
    AccessTokenRequiredError,
    CSRFError,
    JWTDecodeError,
    MissingCSRFTokenError,
    TokenExpiredError,
    TokenInvalidAudienceError,
    TokenInvalidIssuerError,
    TokenInvalidSignatureError,
)
from authx.scopes import has_required_scopes
from authx.token import create_token

PAST = datetime(2020, 1, 1, tzinfo=UTC)


def test_decode_passes_every_argument_on() -> None:
    token = create_token("alice", SECRET, algorithm="HS512", audience="api", issuer="me")
    payload = TokenPayload.decode(token, SECRET, algorithms=["HS512"], audience="api", issuer="me")
    assert (payload.sub, payload.aud, payload.iss) == ("alice", "api", "me")
    with pytest.raises(TokenInvalidAudienceError):
        TokenPayload.decode(token, SECRET, algorithms=["HS512"], audience="web", issuer="me")
    with pytest.raises(TokenInvalidIssuerError):
        TokenPayload.decode(token, SECRET, algorithms=["HS512"], audience="api", issuer="you")


def test_decode_verifies_unless_told_not_to() -> None:
    expired = create_token("alice", SECRET, expiry=PAST)
    with pytest.raises(TokenExpiredError):
        TokenPayload.decode(expired, SECRET)
    assert TokenPayload.decode(expired, SECRET, verify=False).sub == "alice"
    with pytest.raises(TokenInvalidSignatureError):
        TokenPayload.decode(create_token("alice", SECRET), "another-secret-" + "x" * 40)


def test_encode_and_decode_round_trip() -> None:
    payload = TokenPayload(sub="alice", scopes=["read"], fresh=True, type="access", iat=1)
    token = payload.encode(SECRET, algorithm="HS384", data={"org": 7})
    decoded = TokenPayload.decode(token, SECRET, algorithms=["HS384"])
    assert (decoded.sub, decoded.scopes, decoded.fresh, decoded.iat) == ("alice", ["read"], True, 1)
    assert decoded.extra_dict == {"org": 7}


def test_has_scopes_requires_all_by_default() -> None:
    payload = TokenPayload(sub="alice", scopes=["read"])
    assert not payload.has_scopes("read", "write")
    assert payload.has_scopes("read", "write", all_required=False)
    assert not has_required_scopes(["read", "write"], ["read"])
    assert has_required_scopes(["read", "write"], ["read"], all_required=False)


@pytest.mark.parametrize(
    ("required", "provided"),
    [("admin", ["admin"]), (["admin"], "admin:*"), (b"admin", ["admin"]), (["a"], b"a")],
)
def test_a_bare_string_is_not_a_list_of_scopes(required: object, provided: object) -> None:
    with pytest.raises(TypeError) as raised:
        has_required_scopes(required, provided)  # type: ignore[arg-type]
    assert str(raised.value) == "scopes must be a list of strings, not a single string"


def test_encode_writes_every_field_of_the_payload() -> None:
    payload = TokenPayload(
        sub="alice",
        jti="j-1",
        exp=datetime(2040, 1, 1, tzinfo=UTC),
        iat=1_900_000_000,
        nbf=1_900_000_001,
        type="refresh",
        csrf="c-1",
        aud=["api"],
        iss="me",
        scopes=["read"],
        fresh=False,
    )
    token = payload.encode(SECRET, headers={"kid": "k1"})
    header, claims = (
        jwt.get_unverified_header(token),
        jwt.decode(token, options={"verify_signature": False}),
    )
    assert header == {"alg": "HS256", "typ": "JWT", "kid": "k1"}
    assert claims == {
        "sub": "alice",
        "jti": "j-1",
        "type": "refresh",
        "csrf": "c-1",
        "iat": 1_900_000_000,
        "nbf": 1_900_000_001,
        "exp": datetime(2040, 1, 1, tzinfo=UTC).timestamp(),
        "aud": ["api"],
        "iss": "me",
        "scopes": ["read"],
    }


def test_encode_without_a_type_writes_an_access_token() -> None:
    token = TokenPayload(sub="alice", type=None).encode(SECRET)
    assert jwt.decode(token, options={"verify_signature": False})["type"] == "access"


# RequestToken.verify: an application checking a token it found itself ---------------------------


def test_verify_passes_every_argument_on() -> None:
    token = create_token("alice", SECRET, algorithm="HS384", audience="api", issuer="me")
    found = RequestToken(token=token, location="headers")
    payload = found.verify(SECRET, algorithms=["HS384"], audience="api", issuer="me")
    assert payload.sub == "alice"
    with pytest.raises(JWTDecodeError):
        found.verify(SECRET, audience="api", issuer="me")  # HS256 only by default
    with pytest.raises(TokenInvalidAudienceError):
        found.verify(SECRET, algorithms=["HS384"], audience="web", issuer="me")
    with pytest.raises(TokenInvalidIssuerError):
        found.verify(SECRET, algorithms=["HS384"], audience="api", issuer="you")


def test_verify_defaults_check_the_jwt_and_csrf_but_not_freshness() -> None:
    expired = RequestToken(token=create_token("alice", SECRET, expiry=PAST), location="headers")
    with pytest.raises(TokenExpiredError):
        expired.verify(SECRET)
    assert expired.verify(SECRET, verify_jwt=False).sub == "alice"
    stale = create_token("alice", SECRET, fresh=False, csrf="c-1")
    assert RequestToken(token=stale, location="headers").verify(SECRET).fresh is False
    cookie = RequestToken(token=stale, location="cookies")
    with pytest.raises(MissingCSRFTokenError):
        cookie.verify(SECRET)
    assert cookie.verify(SECRET, verify_csrf=False).sub == "alice"
    assert RequestToken(token=stale, location="cookies", csrf="c-1").verify(SECRET).sub == "alice"
    with pytest.raises(CSRFError):
        RequestToken(token=stale, location="cookies", csrf="c-2").verify(SECRET)


def test_relative_expiry_counts_from_now() -> None:
    payload = TokenPayload(sub="alice", exp=timedelta(minutes=5))
    assert payload.expires_at == pytest.approx(time.time() + 300, abs=2)


# RequestToken.check and TokenPayload.from_claims: the messages an application sees ---------------


def test_check_defaults_verify_type_and_csrf_but_not_freshness() -> None:
    refresh = TokenPayload(sub="a", type="refresh", fresh=False, csrf="c-1")
    with pytest.raises(AccessTokenRequiredError):
        RequestToken(token="t", location="headers").check(refresh)
    access = TokenPayload(sub="a", type="access", fresh=False, csrf="c-1")
    RequestToken(token="t", location="headers").check(access)
    with pytest.raises(MissingCSRFTokenError) as missing:
        RequestToken(token="t", location="cookies").check(access)
    assert missing.value.message == (
        "Missing CSRF token in request. Send the value of the CSRF cookie in the "
        "CSRF header. To disable CSRF protection, set JWT_COOKIE_CSRF_PROTECT=False."
    )
    with pytest.raises(CSRFError) as mismatch:
        RequestToken(token="t", location="cookies", csrf="c-2").check(access)
    assert mismatch.value.message == "CSRF token mismatch"


def test_csrf_claim_must_exist_to_match() -> None:
    without = TokenPayload(sub="a", type="access", csrf="")
    with pytest.raises(CSRFError):
        RequestToken(token="t", location="cookies", csrf="c-1").check(without)


def test_missing_identity_claim_message() -> None:
    with pytest.raises(JWTDecodeError) as raised:
        TokenPayload.from_claims({"sub": "alice", "type": "access", "iat": 1}, "uid")
    assert raised.value.message == "Invalid token: missing claim 'uid'"
    payload = TokenPayload.from_claims({"uid": "alice", "type": "access", "iat": 1}, "uid")
    assert payload.sub == "alice"


def test_malformed_claims_message_names_the_claims() -> None:
    with pytest.raises(JWTDecodeError) as raised:
        TokenPayload.from_claims({"sub": 7, "scopes": "admin", "type": "access", "iat": 1})
    assert raised.value.message == "Invalid token: bad claims ['scopes', 'sub']"


# Claims a token may lack: never filled in with "now", "access" or an invented id -----------------


def signed(claims: dict[str, object]) -> str:
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(b'{"alg":"HS256","typ":"JWT"}')
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


@pytest.mark.parametrize("missing", ["iat", "type", "jti"])
def test_a_missing_claim_stays_unknown(missing: str) -> None:
    claims = {"sub": "alice", "iat": 1_700_000_000, "type": "access", "jti": "j-1"}
    del claims[missing]
    payload = TokenPayload.from_claims(claims)
    assert getattr(payload, missing) is None
    for other in {"iat", "type", "jti"} - {missing}:
        assert getattr(payload, other) == claims[other]


async def test_token_without_iat_stays_revoked_by_an_earlier_subject_revocation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth = make_auth()
    await auth.revoke_subject("alice")
    token = signed({"sub": "alice", "type": "access", "jti": "j-1"})
    # Later on: a token whose issue time is unknown must not count as issued "now".
    later = time.time() + 100
    monkeypatch.setattr(authx.schema, "time", types.SimpleNamespace(time=lambda: later))
    response = await get_access(auth, token)
    assert (response.status_code, response.json()["error_type"]) == (401, "RevokedTokenError")


async def test_token_without_type_is_not_an_access_token() -> None:
    auth = make_auth()
    token = signed({"sub": "alice", "iat": int(time.time()), "jti": "j-1"})
    response = await get_access(auth, token)
    assert (response.status_code, response.json()["error_type"]) == (
        401,
        "AccessTokenRequiredError",
    )
