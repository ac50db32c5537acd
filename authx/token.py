"""Creating and decoding JWTs with prepared PyJWT algorithm objects.

The compact JWS form is split and joined here; every signature is made and
checked by PyJWT's algorithm objects with keys prepared once (see ``_keys``).
Claims are validated by one small function each, in PyJWT's order and with
PyJWT's rules, and failures map onto the AuthX exception hierarchy.
"""

from __future__ import annotations

import binascii
import functools
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from jwt.utils import base64url_decode, base64url_encode

from authx._keys import KeySet, _build
from authx.config import SYMMETRIC_ALGORITHMS
from authx.exceptions import (
    JWTDecodeError,
    TokenExpiredError,
    TokenInvalidAudienceError,
    TokenInvalidIssuerError,
    TokenInvalidSignatureError,
)

__all__ = ["RESERVED_CLAIMS", "create_token", "decode_token"]

RESERVED_CLAIMS = frozenset(
    {"fresh", "csrf", "iat", "exp", "iss", "aud", "type", "jti", "nbf", "sub", "scopes"}
)
_JSON_SEPARATORS = (",", ":")
_HEADER_CACHE_SIZE = 64
_HEADERS: dict[bytes, dict[str, Any]] = {}


def _timestamp(value: datetime | timedelta | float | None, now: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, timedelta):
        return now + value.total_seconds()
    return float(value)


def encode(claims: Mapping[str, Any], keys: KeySet, headers: Mapping[str, Any] | None) -> str:
    """Sign ``claims`` with the prepared signing key; ``headers`` adds JWS header fields."""
    alg, key = keys.signing()
    header: dict[str, Any] = {"alg": keys.algorithm, "typ": "JWT"}
    if headers:
        header.update({k: v for k, v in headers.items() if k not in {"alg", "b64", "crit"}})
    segments = [
        base64url_encode(json.dumps(header, separators=_JSON_SEPARATORS).encode()),
        base64url_encode(
            json.dumps(claims, separators=_JSON_SEPARATORS, default=_json_default).encode()
        ),
    ]
    signing_input = b".".join(segments)
    signature = alg.sign(signing_input, key)
    return (signing_input + b"." + base64url_encode(signature)).decode("ascii")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, uuid.UUID | set | frozenset | tuple):
        return str(value) if isinstance(value, uuid.UUID) else list(value)
    raise TypeError(f"claim value of type {type(value).__name__} is not JSON serialisable")


def _b64json(segment: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(base64url_decode(segment))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise JWTDecodeError(f"Invalid token: invalid {what} encoding") from None
    if not isinstance(value, dict):
        raise JWTDecodeError(f"Invalid token: {what} must be a JSON object")
    return value


def decode_jws(token: str, keys: KeySet, verify: bool = True) -> dict[str, Any]:
    """Check the signature of a compact JWS and return its claims (not yet validated)."""
    if not token:
        raise JWTDecodeError("Token must not be empty")
    try:
        raw = token.encode("ascii")
        signing_input, crypto_segment = raw.rsplit(b".", 1)
        header_segment, payload_segment = signing_input.split(b".", 1)
    except (UnicodeEncodeError, ValueError):
        raise JWTDecodeError("Invalid token: Not enough segments") from None
    header = _HEADERS.get(header_segment)
    if header is None:
        header = _b64json(header_segment, "header")
        if "crit" in header or header.get("b64") is False:
            raise JWTDecodeError("Invalid token: unsupported critical header")
        if len(_HEADERS) < _HEADER_CACHE_SIZE:
            # Headers repeat from token to token ({"alg": ..., "typ": "JWT"}).
            _HEADERS[header_segment] = header
    claims = _b64json(payload_segment, "payload")
    if not verify:
        return claims
    candidates = keys.verifiers.get(header.get("alg"))  # type: ignore[arg-type]
    if not candidates:
        raise JWTDecodeError("Invalid token: The specified alg value is not allowed")
    try:
        signature = base64url_decode(crypto_segment)
    except (binascii.Error, ValueError):
        raise JWTDecodeError("Invalid token: invalid crypto padding") from None
    for alg, key in candidates:
        if alg.verify(signing_input, key, signature):
            return claims
    raise TokenInvalidSignatureError("Signature verification failed")


def _numeric(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise JWTDecodeError(f"Invalid token: {name} must be a number")
    return float(value)


def validate_claims(
    claims: Mapping[str, Any],
    audience: str | Sequence[str] | None = None,
    issuer: str | Sequence[str] | None = None,
    leeway: float = 0,
) -> None:
    """Validate ``iat``, ``nbf``, ``exp``, ``iss`` and ``aud`` as PyJWT does."""
    now = time.time()
    iat = _numeric(claims, "iat")
    if iat is not None and iat > now + leeway:
        raise JWTDecodeError("Invalid token: The token is not yet valid (iat)")
    nbf = _numeric(claims, "nbf")
    if nbf is not None and nbf > now + leeway:
        raise JWTDecodeError("Invalid token: The token is not yet valid (nbf)")
    exp = _numeric(claims, "exp")
    if exp is not None and exp <= now - leeway:
        raise TokenExpiredError("Token has expired")
    _validate_issuer(claims.get("iss"), issuer)
    _validate_audience(claims.get("aud"), audience)


def _validate_issuer(iss: Any, issuer: str | Sequence[str] | None) -> None:
    if issuer is None:
        return
    expected = [issuer] if isinstance(issuer, str) else list(issuer)
    if not isinstance(iss, str) or iss not in expected:
        raise TokenInvalidIssuerError("Invalid issuer")


def _validate_audience(aud: Any, audience: str | Sequence[str] | None) -> None:
    if audience is None:
        if aud:
            # PyJWT's rule: a token meant for an audience is refused by a
            # verifier that does not declare one.
            raise TokenInvalidAudienceError("Invalid audience")
        return
    claimed = [aud] if isinstance(aud, str) else aud
    if not claimed or not isinstance(claimed, list) or not all(isinstance(a, str) for a in claimed):
        raise TokenInvalidAudienceError("Invalid audience")
    expected = [audience] if isinstance(audience, str) else list(audience)
    if not any(a in claimed for a in expected):
        raise TokenInvalidAudienceError("Invalid audience")


def build_claims(
    uid: str,
    type: str = "access",
    jti: str | None = None,
    expiry: datetime | timedelta | float | None = None,
    issued: datetime | float | None = None,
    fresh: bool = False,
    csrf: str | bool | None = None,
    audience: str | Sequence[str] | None = None,
    issuer: str | None = None,
    not_before: datetime | timedelta | float | bool | None = None,
    data: Mapping[str, Any] | None = None,
    scopes: Sequence[str] | None = None,
    identity_claim: str = "sub",
) -> dict[str, Any]:
    """The claim set of a new token, in AuthX's order."""
    now = time.time()
    iat = _timestamp(issued, now) if issued is not None else now
    claims: dict[str, Any] = {identity_claim: str(uid), "jti": jti or str(uuid.uuid4())}
    claims["type"] = type
    if type == "access":
        claims["fresh"] = bool(fresh)
    if isinstance(csrf, str):
        claims["csrf"] = csrf
    elif csrf:
        claims["csrf"] = str(uuid.uuid4())
    claims["iat"] = int(iat)  # type: ignore[arg-type]
    if not_before is True:
        claims["nbf"] = int(iat)  # type: ignore[arg-type]
    elif not_before is not None and not_before is not False:
        claims["nbf"] = _timestamp(not_before, now)
    exp = _timestamp(expiry, now)
    if exp is not None:
        claims["exp"] = exp
    if audience:
        claims["aud"] = audience if isinstance(audience, str) else list(audience)
    if issuer:
        claims["iss"] = issuer
    if data:
        clash = sorted(
            set(data) & (RESERVED_CLAIMS - {"jti", "iat"}) | ({identity_claim} & set(data))
        )
        if clash:
            raise TypeError(f"data= must not set reserved claims: {', '.join(clash)}")
        claims.update(data)
    if scopes is not None:
        claims["scopes"] = list(scopes)
    return claims


@functools.lru_cache(maxsize=32)
def _keys_for(key: str, algorithms: tuple[str, ...], signing: bool) -> KeySet:
    symmetric = algorithms[0] in SYMMETRIC_ALGORITHMS
    return _build(
        algorithms[0],
        algorithms,
        key if symmetric else None,
        key if signing and not symmetric else None,
        key if not signing and not symmetric else None,
        None,
        None,
    )


def create_token(
    uid: str,
    key: str,
    type: str = "access",
    jti: str | None = None,
    expiry: datetime | timedelta | float | None = None,
    issued: datetime | float | None = None,
    fresh: bool = False,
    csrf: str | bool | None = None,
    algorithm: str = "HS256",
    headers: dict[str, Any] | None = None,
    audience: str | Sequence[str] | None = None,
    issuer: str | None = None,
    additional_data: dict[str, Any] | None = None,
    not_before: datetime | timedelta | float | None = None,
    data: dict[str, Any] | None = None,
    ignore_errors: bool = True,
    scopes: Sequence[str] | None = None,
) -> str:
    """Create a signed token with ``key`` (an HMAC secret or a private PEM key)."""
    extra = dict(additional_data or {})
    clash = set(extra) & RESERVED_CLAIMS
    if clash and not ignore_errors:
        raise ValueError(f"additional_data uses reserved claims: {sorted(clash)}")
    merged = {k: v for k, v in extra.items() if k not in RESERVED_CLAIMS}
    merged.update(data or {})
    claims = build_claims(
        uid,
        type=type,
        jti=jti,
        expiry=expiry,
        issued=issued,
        fresh=fresh,
        csrf=csrf,
        audience=audience,
        issuer=issuer,
        not_before=not_before,
        data=merged,
        scopes=scopes,
    )
    return encode(claims, _keys_for(key, (algorithm,), True), headers)


def decode_token(
    token: str,
    key: str,
    algorithms: Sequence[str] | None = None,
    audience: str | Sequence[str] | None = None,
    issuer: str | None = None,
    verify: bool = True,
    leeway: float = 0,
) -> dict[str, Any]:
    """Verify ``token`` with ``key`` (an HMAC secret or a public PEM key) and return its claims."""
    algorithms = list(algorithms or ["HS256"])
    claims = decode_jws(token, _keys_for(key, tuple(algorithms), False), verify=verify)
    if verify:
        validate_claims(claims, audience=audience, issuer=issuer, leeway=leeway)
    return claims
