"""The compact JWS AuthX writes and reads: claims written, header fields, and the exact
decode error for each malformed token (the message a client is shown)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from core_support import SECRET

from authx.exceptions import (
    JWTDecodeError,
    TokenInvalidAudienceError,
    TokenInvalidIssuerError,
    TokenInvalidSignatureError,
)
from authx.token import create_token, decode_token, validate_claims

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    decode = lambda s: json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))  # noqa: E731
    return decode(header), decode(payload)


def decode_error(token: str, **kwargs: Any) -> str:
    with pytest.raises(JWTDecodeError) as raised:
        decode_token(token, SECRET, **kwargs)
    return raised.value.message


# What is written ------------------------------------------------------------------------------


def test_header_is_alg_and_typ_plus_extra_fields_that_cannot_replace_them() -> None:
    token = create_token(
        "alice",
        SECRET,
        algorithm="HS384",
        headers={"kid": "k1", "alg": "none", "b64": False, "crit": ["b64"]},
    )
    header, _ = parts(token)
    assert header == {"alg": "HS384", "typ": "JWT", "kid": "k1"}
    assert token.split(".")[0] == b64(b'{"alg":"HS384","typ":"JWT","kid":"k1"}')
    assert decode_token(token, SECRET, algorithms=["HS384"])["sub"] == "alice"


def test_claims_are_written_compactly_in_order() -> None:
    token = create_token(
        "alice",
        SECRET,
        jti="j1",
        issued=NOW,
        expiry=NOW + timedelta(minutes=5),
        not_before=NOW,
        fresh=True,
        csrf="c1",
        audience=("api", "web"),
        issuer="me",
        data={"role": "admin"},
        scopes=("read",),
    )
    payload = token.split(".")[1]
    expected = {
        "sub": "alice",
        "jti": "j1",
        "type": "access",
        "fresh": True,
        "csrf": "c1",
        "iat": int(NOW.timestamp()),
        "nbf": NOW.timestamp(),
        "exp": NOW.timestamp() + 300,
        "aud": ["api", "web"],
        "iss": "me",
        "role": "admin",
        "scopes": ["read"],
    }
    assert payload == b64(json.dumps(expected, separators=(",", ":")).encode())


@pytest.mark.parametrize(
    ("csrf", "written"),
    [("given", "given"), ("", ""), (True, "uuid"), (False, None), (None, None)],
)
def test_csrf_claim(csrf: Any, written: str | None) -> None:
    _, claims = parts(create_token("alice", SECRET, csrf=csrf))
    if written == "uuid":
        assert uuid.UUID(claims["csrf"])
    elif written is None:
        assert "csrf" not in claims
    else:
        assert claims["csrf"] == written


def test_refresh_token_has_no_fresh_claim_and_its_own_type() -> None:
    _, claims = parts(create_token("alice", SECRET, type="refresh", fresh=True))
    assert claims["type"] == "refresh"
    assert "fresh" not in claims


@pytest.mark.parametrize(
    ("not_before", "expected"),
    [
        (True, "iat"),
        (NOW, NOW.timestamp()),
        (timedelta(seconds=30), "iat+30"),
        (1_900_000_000.5, 1_900_000_000.5),
        (False, None),
        (None, None),
    ],
)
def test_not_before_claim(not_before: Any, expected: Any) -> None:
    _, claims = parts(create_token("alice", SECRET, not_before=not_before))
    if expected is None:
        assert "nbf" not in claims
    elif expected == "iat":
        assert claims["nbf"] == claims["iat"]
        assert isinstance(claims["nbf"], int)
    elif expected == "iat+30":
        assert claims["nbf"] == pytest.approx(claims["iat"] + 30, abs=1.5)
    else:
        assert claims["nbf"] == expected


def test_issued_at_as_number_and_default() -> None:
    _, claims = parts(create_token("alice", SECRET, issued=1_800_000_000.9))
    assert claims["iat"] == 1_800_000_000
    _, claims = parts(create_token("alice", SECRET))
    assert abs(claims["iat"] - datetime.now(UTC).timestamp()) < 2


def test_jti_is_generated_unless_given() -> None:
    _, claims = parts(create_token("alice", SECRET))
    assert uuid.UUID(claims["jti"])
    _, given = parts(create_token("alice", SECRET, jti="mine"))
    assert given["jti"] == "mine"


def test_no_optional_claims_unless_asked() -> None:
    _, claims = parts(create_token("alice", SECRET, audience="", issuer=""))
    assert set(claims) == {"sub", "jti", "type", "fresh", "iat"}
    assert (claims["type"], claims["fresh"]) == ("access", False)


def test_data_values_are_made_json() -> None:
    marker = uuid.UUID(int=7)
    _, claims = parts(
        create_token(
            "alice",
            SECRET,
            data={
                "when": NOW,
                "id": marker,
                "tags": {"a"},
                "frozen": frozenset({"b"}),
                "t": (1, 2),
            },
        )
    )
    assert claims["when"] == NOW.timestamp()
    assert claims["id"] == str(marker)
    assert (claims["tags"], claims["frozen"], claims["t"]) == (["a"], ["b"], [1, 2])


def test_data_of_another_type_is_refused() -> None:
    with pytest.raises(TypeError) as raised:
        create_token("alice", SECRET, data={"x": object()})
    assert str(raised.value) == "claim value of type object is not JSON serialisable"


def test_reserved_claims_in_data_are_refused_in_sorted_order() -> None:
    with pytest.raises(TypeError) as raised:
        create_token("alice", SECRET, data={"type": "x", "exp": 1, "role": "r"})
    assert str(raised.value) == "data= must not set reserved claims: exp, type"


def test_jti_and_iat_in_data_replace_the_written_ones() -> None:
    _, claims = parts(create_token("alice", SECRET, data={"jti": "j", "iat": 5}))
    assert (claims["jti"], claims["iat"]) == ("j", 5)


def test_additional_data_with_reserved_claims() -> None:
    _, claims = parts(create_token("alice", SECRET, additional_data={"sub": "x", "org": 1}))
    assert (claims["sub"], claims["org"]) == ("alice", 1)
    _, strict = parts(
        create_token("alice", SECRET, additional_data={"org": 1}, ignore_errors=False)
    )
    assert strict["org"] == 1
    with pytest.raises(ValueError, match="additional_data") as raised:
        create_token("alice", SECRET, additional_data={"sub": "x", "exp": 1}, ignore_errors=False)
    assert str(raised.value) == "additional_data uses reserved claims: ['exp', 'sub']"


# What is refused, and what the client is told ---------------------------------------------------


GOOD = create_token("alice", SECRET)


def signed(header: Any, payload: Any) -> str:
    import hashlib
    import hmac

    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(payload).encode())
    signature = hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "Token must not be empty"),
        ("é.a.b", "Invalid token: not base64url"),
        ("abc", "Invalid token: Not enough segments"),
        ("a.b", "Invalid token: Not enough segments"),
        ("a.b.c.d", "Invalid token: Not enough segments"),
        (GOOD.replace(".", "=.", 1), "Invalid token: not canonical base64url"),
        (GOOD + "=", "Invalid token: not canonical base64url"),
        (b64(b"[1]") + "." + GOOD.split(".", 1)[1], "Invalid token: header must be a JSON object"),
        (
            GOOD.split(".")[0] + ".." + GOOD.split(".")[2],
            "Invalid token: payload must be a JSON object",
        ),
        (
            signed({"alg": "HS256", "crit": ["exp"]}, {"sub": "a"}),
            "Invalid token: unsupported critical header",
        ),
        (
            signed({"alg": "HS256", "b64": True}, {"sub": "a"}),
            "Invalid token: unsupported critical header",
        ),
        (signed({"alg": 256}, {"sub": "a"}), "Invalid token: header alg must be a string"),
        (
            signed({"alg": "HS256", "typ": 1}, {"sub": "a"}),
            "Invalid token: header typ must be a string",
        ),
        (
            signed({"alg": "HS256", "kid": []}, {"sub": "a"}),
            "Invalid token: header kid must be a string",
        ),
        (
            signed({"alg": "HS256", "cty": None}, {"sub": "a"}),
            "Invalid token: header cty must be a string",
        ),
        (signed({"typ": "JWT"}, {"sub": "a"}), "Invalid token: missing alg header"),
        (
            signed({"alg": "HS512"}, {"sub": "a"}),
            "Invalid token: The specified alg value is not allowed",
        ),
        (
            signed({"alg": "HS256"}, {"sub": "a", "exp": "soon"}),
            "Invalid token: exp must be a number",
        ),
        (
            signed({"alg": "HS256"}, {"sub": "a", "nbf": True}),
            "Invalid token: nbf must be a number",
        ),
        (
            signed({"alg": "HS256"}, {"sub": "a", "iat": None}),
            "Invalid token: iat must be a number",
        ),
        (
            signed({"alg": "HS256"}, {"sub": "a", "exp": 10**400}),
            "Invalid token: exp is out of range",
        ),
    ],
    ids=lambda v: v[:40] if isinstance(v, str) else None,
)
def test_decode_error_message(token: str, message: str) -> None:
    assert decode_error(token) == message


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(value: str) -> None:
    head = b64(b'{"alg":"HS256"}')
    body = b64(f'{{"sub":"a","exp":{value}}}'.encode())
    import hashlib
    import hmac

    signature = hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    message = decode_error(f"{head}.{body}.{b64(signature)}")
    assert message in (
        "Invalid token: exp must be a finite number",
        "Invalid token: payload must be a JSON object",
    )


def test_unverified_decode_skips_the_signature_only() -> None:
    forged = GOOD[:-4] + ("AAAA" if not GOOD.endswith("AAAA") else "BBBB")
    assert decode_token(forged, SECRET, verify=False)["sub"] == "alice"
    assert decode_error("abc", verify=False) == "Invalid token: Not enough segments"


# Issuer and audience ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("iss", "issuer", "ok"),
    [
        ("me", "me", True),
        ("me", ["you", "me"], True),
        ("me", ("you", "me"), True),
        ("me", "you", False),
        (None, "me", False),
        (["me"], "me", False),
        (7, ["7"], False),
        ("anything", None, True),
    ],
)
def test_issuer(iss: Any, issuer: Any, ok: bool) -> None:
    claims = {} if iss is None else {"iss": iss}
    if ok:
        validate_claims(claims, issuer=issuer)
    else:
        with pytest.raises(TokenInvalidIssuerError) as raised:
            validate_claims(claims, issuer=issuer)
        assert raised.value.message == "Invalid issuer"


@pytest.mark.parametrize(
    ("aud", "audience", "ok"),
    [
        ("api", "api", True),
        (["web", "api"], "api", True),
        ("api", ["web", "api"], True),
        ("api", ("web", "api"), True),
        (["web"], ["api", "other"], False),
        ("api", "web", False),
        (None, "api", False),
        ([], "api", False),
        ("", "api", False),
        ([7], "7", False),
        (["api", 7], "api", False),
        ({"api": 1}, "api", False),
        ("api", None, False),
        (["api"], None, False),
        ("", None, True),
        ([], None, True),
        (None, None, True),
    ],
)
def test_audience(aud: Any, audience: Any, ok: bool) -> None:
    claims = {} if aud is None else {"aud": aud}
    if ok:
        validate_claims(claims, audience=audience)
    else:
        with pytest.raises(TokenInvalidAudienceError) as raised:
            validate_claims(claims, audience=audience)
        assert raised.value.message == "Invalid audience"


def test_a_float_overflowing_to_infinity_is_refused() -> None:
    import hashlib
    import hmac

    head = b64(b'{"alg":"HS256"}')
    body = b64(b'{"sub":"a","exp":1e400}')
    signature = hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert decode_error(f"{head}.{body}.{b64(signature)}") == (
        "Invalid token: exp must be a finite number"
    )


@pytest.mark.parametrize("length", [35, 38, 39, 42])
def test_signature_of_any_canonical_length_is_a_signature_error(length: int) -> None:
    """Signature segments of unusual lengths decode (padding added as needed) and fail
    verification: a signature error, never a crash."""
    header, payload, _ = GOOD.split(".")
    signature = "A" * length
    with pytest.raises(TokenInvalidSignatureError):
        decode_token(f"{header}.{payload}.{signature}", SECRET)
