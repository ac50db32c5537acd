"""Regression tests for the verification holes found by trying the library as an attacker.

Each test names the defect it pins; the attack corpus in ``tests/security`` runs the
same inputs through every entry point of real servers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from core_support import SECRET, bearer, make_auth, serve

from authx import AuthX
from authx.exceptions import AuthXException, JWTDecodeError, StoreUnavailableError
from authx.scopes import has_required_scopes
from authx.stores.sqlite import SQLiteStore

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(header: Any, payload: Any, secret: str = SECRET) -> str:
    """A compact JWS over header/payload JSON (or raw bytes as given), HS256-signed."""
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{b64(head)}.{b64(body)}".encode()
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{b64(signature)}"


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "alice", "type": "access", "iat": now, "exp": now + 600, **extra}


def respellings(token: str) -> list[str]:
    """Other spellings of ``token`` that a lenient base64url decoder maps to the same bytes."""
    head, body, sig = token.split(".")
    last = sig[-1]
    same_bytes = [
        c for c in ALPHABET if c != last and base64_bits_equal(sig[:-1] + c, sig, len(sig))
    ]
    variants = [
        token + "!!!!",
        f"{head}.{body}.{sig[:4]}$$$${sig[4:]}",
        token + "=",
        token + "==",
        f"{head}.{body}.{sig[:3]} {sig[3:]}",
        f"{head}.{body}.{sig}\n",
        f"{head}=.{body}.{sig}",
        f"{head}.{body}.{sig.replace('-', '+').replace('_', '/')}",
        f" {token}",
    ]
    variants += [f"{head}.{body}.{sig[:-1]}{c}" for c in same_bytes]
    return [v for v in variants if v != token]


def base64_bits_equal(a: str, b: str, length: int) -> bool:
    pad = "=" * (-length % 4)
    return base64.urlsafe_b64decode(a + pad) == base64.urlsafe_b64decode(b + pad)


def test_a_token_has_one_spelling() -> None:
    auth = make_auth()
    token = auth.create_access_token("alice")
    assert auth._decode_token(token).sub == "alice"
    variants = respellings(token)
    assert len(variants) >= 10  # the unused-bit variants exist for this length
    for variant in variants:
        with pytest.raises(JWTDecodeError):
            auth._decode_token(variant)


@pytest.mark.parametrize("segment", [0, 1])
def test_unused_bits_are_refused_in_header_and_payload(segment: int) -> None:
    auth = make_auth()
    token = auth.create_access_token("alice")
    parts = token.split(".")
    if len(parts[segment]) % 4 in (2, 3):
        last = parts[segment][-1]
        twins = [
            c
            for c in ALPHABET
            if c != last
            and base64_bits_equal(parts[segment][:-1] + c, parts[segment], len(parts[segment]))
        ]
        assert twins
        parts[segment] = parts[segment][:-1] + twins[0]
        with pytest.raises(JWTDecodeError):
            auth._decode_token(".".join(parts))


async def test_respelled_revoked_token_stays_revoked_over_http() -> None:
    auth = make_auth()
    token = auth.create_access_token("alice")
    revoked = {token}
    auth.set_token_blocklist(lambda t: t in revoked)
    async with serve(auth) as client:
        assert (await client.get("/access", headers=bearer(token))).status_code == 401
        for variant in respellings(token):
            if " " in variant.strip() or "\n" in variant:
                continue  # not a valid header value for the client
            response = await client.get("/access", headers=bearer(variant.strip()))
            assert response.status_code == 401, variant


@pytest.mark.parametrize("where", ["header", "payload"])
def test_deeply_nested_json_is_a_clean_decode_error(where: str) -> None:
    auth = make_auth()
    nested = b"[" * 5000
    good_header = json.dumps({"alg": "HS256", "typ": "JWT"}).encode()
    good_payload = json.dumps(claims()).encode()
    token = signed(nested, good_payload) if where == "header" else signed(good_header, nested)
    with pytest.raises(JWTDecodeError):
        auth._decode_token(token)


async def test_deeply_nested_json_body_is_401() -> None:
    auth = make_auth(JWT_TOKEN_LOCATION=["json"])
    async with serve(auth) as client:
        response = await client.post(
            "/access", content=b"[" * 100_000, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 401
    assert response.json()["error_type"] == "MissingTokenError"


@pytest.mark.parametrize(
    "header",
    [
        {"alg": ["HS256"]},
        {"alg": {"name": "HS256"}},
        {"alg": 256},
        {"alg": None},
        {"typ": "JWT"},
        {"alg": "HS256", "typ": ["JWT"]},
        {"alg": "HS256", "kid": {"x": 1}},
        {"alg": "HS256", "crit": ["exp"]},
        {"alg": "HS256", "b64": False},
        {"alg": "none"},
        {"alg": "NONE"},
    ],
)
def test_header_fields_of_the_wrong_type_are_decode_errors(header: dict[str, Any]) -> None:
    with pytest.raises(JWTDecodeError):
        make_auth()._decode_token(signed(header, claims()))


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "true", "false", '"1"', "1e400"])
def test_numeric_claims_must_be_finite_numbers(claim: str, value: str) -> None:
    # The literal goes in by hand: RFC 8259 JSON has no NaN or Infinity.
    body = json.dumps({k: v for k, v in claims().items() if k != claim})[:-1]
    body += f', "{claim}": {value}}}'
    token = signed({"alg": "HS256", "typ": "JWT"}, body.encode())
    with pytest.raises(JWTDecodeError):
        make_auth()._decode_token(token)


def test_a_huge_integer_claim_is_a_decode_error() -> None:
    body = json.dumps(claims())[:-1] + ', "nbf": ' + "9" * 400 + "}"
    token = signed({"alg": "HS256", "typ": "JWT"}, body.encode())
    with pytest.raises(JWTDecodeError):
        make_auth()._decode_token(token)


async def test_token_without_type_is_not_an_access_token() -> None:
    auth = make_auth()
    payload = claims()
    del payload["type"]
    token = signed({"alg": "HS256", "typ": "JWT"}, payload)
    assert auth._decode_token(token).type is None
    async with serve(auth) as client:
        response = await client.get("/access", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["error_type"] == "AccessTokenRequiredError"


async def test_subject_revocation_covers_tokens_without_iat() -> None:
    auth = make_auth()
    payload = claims()
    del payload["iat"]
    token = signed({"alg": "HS256", "typ": "JWT"}, payload)
    decoded = auth._decode_token(token)
    assert decoded.iat is None  # unknown, not "now"
    async with serve(auth) as client:
        assert (await client.get("/access", headers=bearer(token))).status_code == 200
        await auth.revoke_subject("alice")
        response = await client.get("/access", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["error_type"] == "RevokedTokenError"


def test_scopes_must_be_lists_not_strings() -> None:
    with pytest.raises(TypeError):
        has_required_scopes(["a"], "admin:*")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        has_required_scopes("admin", ["admin"])
    assert has_required_scopes(["admin:users"], ["admin:*"])
    assert not has_required_scopes(["a"], ["admin:*"])


def test_junk_headers_do_not_fill_the_header_cache() -> None:
    auth = make_auth()
    keys = auth._verifier.keys
    for n in range(200):
        junk = signed({"alg": "HS256", "junk": n}, claims(), secret="not-the-key-" + "x" * 40)
        with pytest.raises(AuthXException):
            auth._decode_token(junk)
    assert keys.headers == {}
    token = auth.create_access_token("alice")
    assert auth._decode_token(token).sub == "alice"
    assert len(keys.headers) == 1


def test_every_failure_is_an_authx_exception() -> None:
    """Crafted inputs of every shape give an AuthXException, nothing else."""
    auth = make_auth()
    header = b64(b'{"alg":"HS256"}')
    crafted = [
        "",
        ".",
        "..",
        "a.b.c",
        "é.é.é",
        "\x00.\x00.\x00",
        f"{header}..",
        f"{header}.{b64(b'[]')}.",
        f"{header}.{b64(b'null')}.AAAA",
        f"{header}.{b64(bytes([0xFF, 0xFE]))}.AAAA",
        f"{b64(b'{}')}.{b64(b'{}')}.AAAA",
        "x" * 10_000,
        ".".join(["A"] * 50),
    ]
    for token in crafted:
        with pytest.raises(AuthXException):
            auth._decode_token(token)


async def test_sqlite_file_deleted_while_running_fails_the_revocation(tmp_path: Path) -> None:
    path = tmp_path / "revocations.db"
    store = SQLiteStore(f"sqlite:///{path}")
    auth: AuthX[Any] = make_auth()
    auth.set_store(store)
    try:
        await auth.revoke_token("first-jti")
        os.remove(path)
        with pytest.raises(StoreUnavailableError):
            await auth.revoke_token("second-jti")
        # Another process (or a restart) creating the file again is followed.
        other = SQLiteStore(f"sqlite:///{path}")
        try:
            await other.revoke_token("third-jti", time.time() + 60)
            assert await store.is_revoked("third-jti", None, None)
            await auth.revoke_token("fourth-jti")
            assert await other.is_revoked("fourth-jti", None, None)
        finally:
            await other.close()
    finally:
        await store.close()
