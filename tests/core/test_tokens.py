"""Creating and verifying tokens: algorithms, key rotation, claims and the plain functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from core_support import OTHER_SECRET, SECRET, get_access, key_pair, make_auth, serve

from authx import AuthX, AuthXConfig, TokenPayload, TokenResponse
from authx.exceptions import JWTDecodeError, TokenExpiredError, TokenInvalidSignatureError
from authx.token import create_token, decode_token

PAST = datetime(2020, 1, 1, tzinfo=UTC)


def claims(token: str) -> dict[str, Any]:
    """The claims of ``token``, read without verification (what any client can see)."""
    return jwt.decode(token, options={"verify_signature": False})


def asymmetric_auth(algorithm: str, n: int = 0, **overrides: Any) -> AuthX[Any]:
    private, public = key_pair(algorithm, n)
    return AuthX(
        config=AuthXConfig(
            JWT_ALGORITHM=algorithm, JWT_PRIVATE_KEY=private, JWT_PUBLIC_KEY=public, **overrides
        )
    )


def assert_error(response: Any, status: int, error_type: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error_type"] == error_type


# Algorithms ----------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["HS256", "RS256", "ES256", "EdDSA"])
async def test_round_trip(algorithm: str) -> None:
    auth = make_auth() if algorithm == "HS256" else asymmetric_auth(algorithm)
    token = auth.create_access_token("alice", data={"role": "admin"})
    assert jwt.get_unverified_header(token) == {"alg": algorithm, "typ": "JWT"}
    response = await get_access(auth, token)
    assert response.status_code == 200
    assert response.json() == {
        "sub": "alice",
        "type": "access",
        "fresh": False,
        "scopes": None,
        "extra": {"role": "admin"},
    }


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
def test_asymmetric_tokens_verify_with_pyjwt(algorithm: str) -> None:
    """Tokens are standard JWS: PyJWT verifies them with the public key alone."""
    token = asymmetric_auth(algorithm).create_access_token("alice")
    _, public = key_pair(algorithm)
    assert jwt.decode(token, public, algorithms=[algorithm])["sub"] == "alice"


@pytest.mark.parametrize("algorithm", ["HS256", "RS256", "ES256", "EdDSA"])
async def test_token_from_another_key_is_refused(algorithm: str) -> None:
    if algorithm == "HS256":
        signer, verifier = make_auth(JWT_SECRET_KEY=OTHER_SECRET), make_auth()
    else:
        signer, verifier = asymmetric_auth(algorithm, 1), asymmetric_auth(algorithm, 0)
    response = await get_access(verifier, signer.create_access_token("mallory"))
    assert_error(response, 401, "TokenInvalidSignatureError")


async def test_token_with_another_algorithm_is_refused() -> None:
    rs_token = asymmetric_auth("RS256").create_access_token("alice")
    assert_error(await get_access(make_auth(), rs_token), 401, "JWTDecodeError")


async def test_unsigned_token_is_refused() -> None:
    unsigned = jwt.encode({"sub": "mallory", "type": "access"}, None, algorithm="none")
    assert_error(await get_access(make_auth(), unsigned), 401, "JWTDecodeError")


# Key rotation --------------------------------------------------------------------------


def rotation_pair(family: str) -> tuple[AuthX[Any], AuthX[Any], AuthX[Any]]:
    """(old signer, rotated verifier that keeps the old key, stranger)."""
    if family == "HS256":
        old = make_auth(JWT_SECRET_KEY=OTHER_SECRET)
        rotated = make_auth(JWT_PREVIOUS_SECRET_KEY=OTHER_SECRET)
        stranger = make_auth(JWT_SECRET_KEY="a-third-secret-" + "t" * 64)
        return old, rotated, stranger
    old = asymmetric_auth(family, 1)
    rotated = asymmetric_auth(family, 0, JWT_PREVIOUS_PUBLIC_KEY=key_pair(family, 1)[1])
    return old, rotated, asymmetric_auth(family, 2)


@pytest.mark.parametrize("family", ["HS256", "RS256"])
async def test_rotation_old_key_tokens_still_verify(family: str) -> None:
    old, rotated, _ = rotation_pair(family)
    async with serve(rotated) as client:
        by_old = await client.get(
            "/access", headers={"Authorization": "Bearer " + old.create_access_token("old")}
        )
        by_new = await client.get(
            "/access", headers={"Authorization": "Bearer " + rotated.create_access_token("new")}
        )
    assert (by_old.status_code, by_old.json()["sub"]) == (200, "old")
    assert (by_new.status_code, by_new.json()["sub"]) == (200, "new")


@pytest.mark.parametrize("family", ["HS256", "RS256"])
async def test_rotation_signs_with_current_key(family: str) -> None:
    old, rotated, _ = rotation_pair(family)
    token = rotated.create_access_token("new")
    assert_error(await get_access(old, token), 401, "TokenInvalidSignatureError")


@pytest.mark.parametrize("family", ["HS256", "RS256"])
async def test_rotation_unknown_key_is_a_signature_error(family: str) -> None:
    _, rotated, stranger = rotation_pair(family)
    response = await get_access(rotated, stranger.create_access_token("mallory"))
    assert_error(response, 401, "TokenInvalidSignatureError")


@pytest.mark.parametrize("family", ["HS256", "RS256"])
@pytest.mark.parametrize("signer", ["current", "previous"])
async def test_rotation_expired_token_reports_expiry(family: str, signer: str) -> None:
    old, rotated, _ = rotation_pair(family)
    issuer = rotated if signer == "current" else old
    token = issuer.create_access_token("alice", expiry=timedelta(seconds=-1))
    assert_error(await get_access(rotated, token), 401, "TokenExpiredError")


# Expiry --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expiry", [timedelta(seconds=-1), PAST], ids=["relative", "absolute-datetime"]
)
@pytest.mark.parametrize("kind", ["access", "refresh"])
async def test_expired_tokens_are_refused(expiry: Any, kind: str) -> None:
    auth = make_auth()
    token = (
        auth.create_access_token("alice", expiry=expiry)
        if kind == "access"
        else auth.create_refresh_token("alice", expiry=expiry)
    )
    response = await get_access(auth, token, path=f"/{kind}")
    assert_error(response, 401, "TokenExpiredError")
    assert response.json()["message"] == "Token has expired"


def test_default_expiries() -> None:
    auth = make_auth()
    access = claims(auth.create_access_token("alice"))
    refresh = claims(auth.create_refresh_token("alice"))
    assert access["exp"] - access["iat"] == pytest.approx(15 * 60, abs=2)
    assert refresh["exp"] - refresh["iat"] == pytest.approx(20 * 86400, abs=2)


def test_absolute_expiry_is_written_as_given() -> None:
    future = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    assert claims(make_auth().create_access_token("a", expiry=future))["exp"] == (
        future.timestamp()
    )


async def test_no_expiry_when_configured_none() -> None:
    auth = make_auth(JWT_ACCESS_TOKEN_EXPIRES=None)
    token = auth.create_access_token("alice")
    assert "exp" not in claims(token)
    assert (await get_access(auth, token)).status_code == 200


# Audience, issuer, leeway, nbf ---------------------------------------------------------


@pytest.mark.parametrize(
    ("encode", "decode", "expected"),
    [
        ("api", "api", 200),
        (["api", "web"], "web", 200),
        ("api", ["other", "api"], 200),
        ("api", "other", "TokenInvalidAudienceError"),
        (None, "api", "TokenInvalidAudienceError"),
        # A token meant for an audience is refused by a verifier that expects none.
        ("api", None, "TokenInvalidAudienceError"),
    ],
)
async def test_audience(encode: Any, decode: Any, expected: Any) -> None:
    auth = make_auth(JWT_ENCODE_AUDIENCE=encode, JWT_DECODE_AUDIENCE=decode)
    token = auth.create_access_token("alice")
    if encode is not None:
        assert claims(token)["aud"] == encode
    response = await get_access(auth, token)
    if expected == 200:
        assert response.status_code == 200
    else:
        assert_error(response, 401, expected)


async def test_audience_argument_overrides_encode_setting() -> None:
    auth = make_auth(JWT_ENCODE_AUDIENCE="api", JWT_DECODE_AUDIENCE="api")
    token = auth.create_access_token("alice", audience="billing")
    assert claims(token)["aud"] == "billing"
    assert_error(await get_access(auth, token), 401, "TokenInvalidAudienceError")


@pytest.mark.parametrize(
    ("encode", "decode", "expected"),
    [
        ("https://id.example", "https://id.example", 200),
        (None, None, 200),
        ("https://id.example", None, 200),
        ("https://evil.example", "https://id.example", "TokenInvalidIssuerError"),
        (None, "https://id.example", "TokenInvalidIssuerError"),
    ],
)
async def test_issuer(encode: Any, decode: Any, expected: Any) -> None:
    auth = make_auth(JWT_ENCODE_ISSUER=encode, JWT_DECODE_ISSUER=decode)
    token = auth.create_access_token("alice")
    assert claims(token).get("iss") == encode
    response = await get_access(auth, token)
    if expected == 200:
        assert response.status_code == 200
    else:
        assert_error(response, 401, expected)


@pytest.mark.parametrize(("leeway", "status"), [(0, 401), (60, 200)])
async def test_leeway_accepts_recently_expired_tokens(leeway: int, status: int) -> None:
    auth = make_auth(JWT_DECODE_LEEWAY=leeway)
    token = auth.create_access_token("alice", expiry=timedelta(seconds=-10))
    assert (await get_access(auth, token)).status_code == status


@pytest.mark.parametrize("encode_nbf", [True, False])
def test_nbf_claim_follows_setting(encode_nbf: bool) -> None:
    token_claims = claims(make_auth(JWT_ENCODE_NBF=encode_nbf).create_access_token("alice"))
    if encode_nbf:
        assert token_claims["nbf"] == token_claims["iat"]
    else:
        assert "nbf" not in token_claims


@pytest.mark.parametrize(("leeway", "status"), [(0, 401), (600, 200)])
async def test_future_nbf_is_refused(leeway: int, status: int) -> None:
    token = create_token("alice", SECRET, not_before=timedelta(minutes=5))
    response = await get_access(make_auth(JWT_DECODE_LEEWAY=leeway), token)
    assert response.status_code == status
    if status == 401:
        assert response.json()["error_type"] == "JWTDecodeError"


# Claims ----------------------------------------------------------------------------------


def test_claims_written() -> None:
    token_claims = claims(make_auth().create_access_token("alice", fresh=True))
    assert set(token_claims) == {"sub", "jti", "type", "fresh", "csrf", "iat", "nbf", "exp"}
    assert token_claims["type"] == "access"
    assert token_claims["fresh"] is True
    assert isinstance(token_claims["iat"], int)
    # No cookies configured: no CSRF value to double-submit.
    assert token_claims["csrf"] == ""


def test_refresh_tokens_have_no_fresh_claim() -> None:
    token_claims = claims(make_auth().create_refresh_token("alice"))
    assert token_claims["type"] == "refresh"
    assert "fresh" not in token_claims


@pytest.mark.parametrize(
    ("create", "options"),
    [
        ("create_access_token", {"expires": timedelta(seconds=1)}),
        ("create_access_token", {"scope": ["admin"]}),
        ("create_refresh_token", {"fresh": True}),
    ],
)
def test_misspelt_options_are_refused(create: str, options: dict[str, Any]) -> None:
    # A misspelt option must not silently give a 15-minute token without scopes.
    with pytest.raises(TypeError):
        getattr(make_auth(), create)("alice", **options)


def test_jti_is_unique() -> None:
    auth = make_auth()
    assert (
        claims(auth.create_access_token("a"))["jti"] != claims(auth.create_access_token("a"))["jti"]
    )


def test_extra_headers() -> None:
    token = make_auth().create_access_token("alice", headers={"kid": "2024-01"})
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT", "kid": "2024-01"}


async def test_identity_claim() -> None:
    auth = make_auth(JWT_IDENTITY_CLAIM="uid")
    token = auth.create_access_token("alice")
    assert claims(token)["uid"] == "alice"
    assert "sub" not in claims(token)
    response = await get_access(auth, token)
    assert response.json()["sub"] == "alice"


async def test_identity_claim_missing_is_refused() -> None:
    """A token without the configured identity claim is invalid, not a server error."""
    token = make_auth().create_access_token("alice")  # carries "sub", not "uid"
    response = await get_access(make_auth(JWT_IDENTITY_CLAIM="uid"), token)
    assert_error(response, 401, "JWTDecodeError")


async def test_data_claims_are_flat_attributes_and_extra_dict() -> None:
    auth = make_auth()
    data = {"role": "admin", "org": 7, "tags": ["a", "b"]}
    token = auth.create_access_token("alice", data=data)
    assert {k: claims(token)[k] for k in data} == data
    payload = auth._decode_token(token)
    assert payload.role == "admin"  # type: ignore[attr-defined]
    assert payload.org == 7  # type: ignore[attr-defined]
    assert payload.extra_dict == data
    response = await get_access(auth, token)
    assert response.json()["extra"] == data


@pytest.mark.parametrize("claim", ["sub", "exp", "type", "fresh", "csrf", "scopes", "aud"])
def test_data_cannot_override_reserved_claims(claim: str) -> None:
    with pytest.raises(TypeError, match=claim):
        make_auth().create_access_token("alice", data={claim: "x"})


def test_data_is_not_mutated() -> None:
    data = {"role": "admin"}
    AuthX(config=make_auth().config, login_type="staff").create_access_token("alice", data=data)
    assert data == {"role": "admin"}


@pytest.mark.parametrize(
    ("scopes", "expected"), [(["read", "admin:*"], ["read", "admin:*"]), ([], [])]
)
async def test_scopes_claim(scopes: list[str], expected: list[str]) -> None:
    auth = make_auth()
    token = auth.create_access_token("alice", scopes=scopes)
    assert claims(token)["scopes"] == expected
    assert (await get_access(auth, token)).json()["scopes"] == expected


def test_no_scopes_claim_by_default() -> None:
    assert "scopes" not in claims(make_auth().create_access_token("alice"))


async def test_token_pair() -> None:
    auth = make_auth()
    pair = auth.create_token_pair(
        "alice",
        fresh=True,
        data={"role": "admin"},
        access_scopes=["read"],
        refresh_scopes=["refresh"],
        access_expiry=timedelta(minutes=1),
        refresh_expiry=timedelta(days=1),
    )
    assert isinstance(pair, TokenResponse)
    assert pair.token_type == "bearer"
    access, refresh = claims(pair.access_token), claims(pair.refresh_token)
    assert (access["type"], access["fresh"], access["scopes"]) == ("access", True, ["read"])
    assert (refresh["type"], refresh["scopes"]) == ("refresh", ["refresh"])
    assert access["role"] == refresh["role"] == "admin"
    assert access["exp"] - access["iat"] == pytest.approx(60, abs=2)
    assert refresh["exp"] - refresh["iat"] == pytest.approx(86400, abs=2)
    async with serve(auth) as client:
        fresh = await client.get("/fresh", headers={"Authorization": f"Bearer {pair.access_token}"})
        renewed = await client.post(
            "/refresh", headers={"Authorization": f"Bearer {pair.refresh_token}"}
        )
    assert fresh.status_code == 200
    assert renewed.status_code == 200
    assert renewed.json()["type"] == "refresh"


# authx.token: the plain functions ----------------------------------------------------------


def test_create_and_decode_token_functions() -> None:
    token = create_token(
        "alice",
        SECRET,
        type="refresh",
        expiry=timedelta(minutes=5),
        audience="api",
        issuer="me",
        data={"role": "admin"},
    )
    decoded = decode_token(token, SECRET, algorithms=["HS256"], audience="api", issuer="me")
    assert decoded["sub"] == "alice"
    assert decoded["type"] == "refresh"
    assert decoded["role"] == "admin"
    assert (decoded["aud"], decoded["iss"]) == ("api", "me")


def test_decode_token_function_rejects() -> None:
    expired = create_token("alice", SECRET, expiry=PAST)
    with pytest.raises(TokenExpiredError):
        decode_token(expired, SECRET)
    with pytest.raises(TokenInvalidSignatureError):
        decode_token(create_token("alice", SECRET), OTHER_SECRET)
    with pytest.raises(JWTDecodeError):
        decode_token("", SECRET)
    # verify=False reads the claims without checking the signature or expiry.
    assert decode_token(expired, OTHER_SECRET, verify=False)["sub"] == "alice"


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
def test_plain_functions_with_pem_keys(algorithm: str) -> None:
    private, public = key_pair(algorithm)
    token = create_token("alice", private, algorithm=algorithm)
    assert decode_token(token, public, algorithms=[algorithm])["sub"] == "alice"


def test_token_payload_decode_matches_create() -> None:
    token = create_token("alice", SECRET, fresh=True, scopes=["read"], data={"role": "x"})
    payload = TokenPayload.decode(token, SECRET)
    assert (payload.sub, payload.fresh, payload.scopes) == ("alice", True, ["read"])
    assert payload.extra_dict == {"role": "x"}
    assert payload.exp is None  # create_token has no default expiry
