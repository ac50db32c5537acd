"""Every supported algorithm refuses a token it did not sign, and accepts the one it did.

For each algorithm a verifier is given a token signed with another key of the
same kind, the right token with its payload (or header, or signature) changed,
and the right token itself. The first ones are refused with
TokenInvalidSignatureError (401 over HTTP), both by the ``authx.token``
functions and by an AuthX app; the last is accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from core_support import OTHER_SECRET, SECRET, get_access
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from authx import AuthX, AuthXConfig
from authx.exceptions import JWTDecodeError, TokenInvalidSignatureError
from authx.token import create_token, decode_token

HMAC_ALGORITHMS = ["HS256", "HS384", "HS512"]
RSA_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
EC_CURVES: dict[str, Callable[[], ec.EllipticCurve]] = {
    "ES256": ec.SECP256R1,
    "ES256K": ec.SECP256K1,
    "ES384": ec.SECP384R1,
    "ES512": ec.SECP521R1,
}
ALGORITHMS = [*HMAC_ALGORITHMS, *RSA_ALGORITHMS, *EC_CURVES, "EdDSA"]

_PEMS: dict[tuple[str, int], tuple[str, str]] = {}


def _family(algorithm: str) -> str:
    """RS* and PS* share RSA keys; each curve has its own."""
    return "RSA" if algorithm in RSA_ALGORITHMS else algorithm


def pem_pair(algorithm: str, n: int = 0) -> tuple[str, str]:
    """The n-th (private PEM, public PEM) pair for an asymmetric ``algorithm``."""
    key = (_family(algorithm), n)
    if key not in _PEMS:
        private_key: Any
        if algorithm in RSA_ALGORITHMS:
            private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif algorithm in EC_CURVES:
            private_key = ec.generate_private_key(EC_CURVES[algorithm]())
        else:
            private_key = ed25519.Ed25519PrivateKey.generate()
        private = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        public = (
            private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        _PEMS[key] = (private, public)
    return _PEMS[key]


def signing_key(algorithm: str, n: int = 0) -> str:
    if algorithm in HMAC_ALGORITHMS:
        return (SECRET, OTHER_SECRET)[n]
    return pem_pair(algorithm, n)[0]


def verifying_key(algorithm: str, n: int = 0) -> str:
    if algorithm in HMAC_ALGORITHMS:
        return (SECRET, OTHER_SECRET)[n]
    return pem_pair(algorithm, n)[1]


def auth_for(algorithm: str, n: int = 0, **overrides: Any) -> AuthX[Any]:
    if algorithm in HMAC_ALGORITHMS:
        settings: dict[str, Any] = {"JWT_SECRET_KEY": signing_key(algorithm, n)}
    else:
        private, public = pem_pair(algorithm, n)
        settings = {"JWT_PRIVATE_KEY": private, "JWT_PUBLIC_KEY": public}
    return AuthX(config=AuthXConfig(JWT_ALGORITHM=algorithm, **settings, **overrides))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def with_claims(token: str, **changes: Any) -> str:
    """``token`` with its payload changed and its header and signature kept."""
    header, payload, signature = token.split(".")
    claims = {**json.loads(unb64(payload)), **changes}
    return ".".join([header, b64(json.dumps(claims, separators=(",", ":")).encode()), signature])


def with_header(token: str, **changes: Any) -> str:
    header, payload, signature = token.split(".")
    fields = {**json.loads(unb64(header)), **changes}
    return ".".join([b64(json.dumps(fields, separators=(",", ":")).encode()), payload, signature])


def with_signature_bit_flipped(token: str) -> str:
    header, payload, signature = token.split(".")
    raw = bytearray(unb64(signature))
    raw[len(raw) // 2] ^= 0x01
    return ".".join([header, payload, b64(bytes(raw))])


def without_signature(token: str) -> str:
    header, payload, _ = token.split(".")
    return f"{header}.{payload}."


TAMPERINGS: dict[str, Callable[[str], str]] = {
    "changed-subject": lambda t: with_claims(t, sub="mallory"),
    "changed-scopes": lambda t: with_claims(t, scopes=["admin:*"]),
    "changed-expiry": lambda t: with_claims(t, exp=json.loads(unb64(t.split(".")[1]))["exp"] + 1),
    "added-header-field": lambda t: with_header(t, kid="other"),
    "flipped-signature-bit": with_signature_bit_flipped,
}


def assert_signature_error(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error_type"] == "TokenInvalidSignatureError"


# The plain functions -------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_right_key_is_accepted(algorithm: str) -> None:
    token = create_token("alice", signing_key(algorithm), algorithm=algorithm, scopes=["read"])
    claims = decode_token(token, verifying_key(algorithm), algorithms=[algorithm])
    assert (claims["sub"], claims["scopes"]) == ("alice", ["read"])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_wrong_key_is_refused(algorithm: str) -> None:
    token = create_token("mallory", signing_key(algorithm, 1), algorithm=algorithm)
    with pytest.raises(TokenInvalidSignatureError):
        decode_token(token, verifying_key(algorithm, 0), algorithms=[algorithm])


@pytest.mark.parametrize("tampering", TAMPERINGS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_tampered_token_is_refused(algorithm: str, tampering: str) -> None:
    token = create_token(
        "alice", signing_key(algorithm), algorithm=algorithm, expiry=timedelta(minutes=10)
    )
    # The untouched token verifies: the refusal below is the tampering's doing.
    assert decode_token(token, verifying_key(algorithm), algorithms=[algorithm])["sub"] == "alice"
    tampered = TAMPERINGS[tampering](token)
    with pytest.raises(TokenInvalidSignatureError):
        decode_token(tampered, verifying_key(algorithm), algorithms=[algorithm])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_stripped_signature_is_refused(algorithm: str) -> None:
    token = create_token("alice", signing_key(algorithm), algorithm=algorithm)
    # A signature error, or a malformed-token error under stricter parsing: refused either way.
    with pytest.raises(JWTDecodeError):
        decode_token(without_signature(token), verifying_key(algorithm), algorithms=[algorithm])


# Through an AuthX app -------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_app_accepts_its_own_tokens(algorithm: str) -> None:
    auth = auth_for(algorithm)
    response = await get_access(auth, auth.create_access_token("alice"))
    assert response.status_code == 200, response.text
    assert response.json()["sub"] == "alice"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_app_refuses_another_keys_tokens(algorithm: str) -> None:
    signer, verifier = auth_for(algorithm, 1), auth_for(algorithm, 0)
    assert_signature_error(await get_access(verifier, signer.create_access_token("mallory")))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_app_refuses_a_changed_payload(algorithm: str) -> None:
    auth = auth_for(algorithm)
    token = auth.create_access_token("alice")
    assert_signature_error(await get_access(auth, with_claims(token, sub="mallory")))


# Several algorithms of one family ------------------------------------------------------


@pytest.mark.parametrize("signed_with", HMAC_ALGORITHMS)
@pytest.mark.parametrize("header_says", HMAC_ALGORITHMS)
def test_header_alg_must_match_the_signature(signed_with: str, header_says: str) -> None:
    """With every HMAC algorithm allowed, the header's ``alg`` picks how to verify."""
    token = create_token("alice", SECRET, algorithm=signed_with)
    relabelled = with_header(token, alg=header_says)
    if header_says == signed_with:
        assert decode_token(relabelled, SECRET, algorithms=HMAC_ALGORITHMS)["sub"] == "alice"
    else:
        with pytest.raises(TokenInvalidSignatureError):
            decode_token(relabelled, SECRET, algorithms=HMAC_ALGORITHMS)


@pytest.mark.parametrize("algorithm", HMAC_ALGORITHMS)
async def test_every_allowed_algorithm_checks_its_signature(algorithm: str) -> None:
    auth = AuthX(config=AuthXConfig(JWT_SECRET_KEY=SECRET, JWT_DECODE_ALGORITHMS=HMAC_ALGORITHMS))
    good = create_token("alice", SECRET, algorithm=algorithm, type="access")
    forged = create_token("mallory", OTHER_SECRET, algorithm=algorithm, type="access")
    response = await get_access(auth, good)
    assert (response.status_code, response.json()["sub"]) == (200, "alice")
    assert_signature_error(await get_access(auth, forged))


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
def test_public_key_used_as_hmac_secret_is_refused(algorithm: str) -> None:
    """The classic confusion: an HS256 token "signed" with the verifier's public key."""
    public = verifying_key(algorithm)
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps({"sub": "mallory", "type": "access"}).encode())
    signature = hmac.new(public.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    forged = f"{header}.{payload}.{b64(signature.digest())}"
    with pytest.raises(JWTDecodeError):
        decode_token(forged, public, algorithms=[algorithm])
