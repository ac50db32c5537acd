"""Creating and decoding JWTs with prepared PyJWT algorithm objects.

The compact JWS form is split and joined here; every signature is made and
checked by PyJWT's algorithm objects with keys prepared once (see ``_keys``).
Claims are validated by one small function each, in PyJWT's order and with
PyJWT's rules, and failures map onto the AuthX exception hierarchy.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jwt.algorithms import Algorithm
from jwt.utils import base64url_encode

from authx._json import loads_object
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


def _utc_timestamp(value: datetime) -> float:
    """Seconds since the epoch; a naive datetime is UTC (PyJWT's rule), never local time."""
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).timestamp()


def _timestamp(value: datetime | timedelta | float | None, now: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return _utc_timestamp(value)
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
        return _utc_timestamp(value)
    if isinstance(value, uuid.UUID | set | frozenset | tuple):
        return str(value) if isinstance(value, uuid.UUID) else list(value)
    raise TypeError(f"claim value of type {type(value).__name__} is not JSON serialisable")


#: A compact JWS in the base64url alphabet only: no padding, whitespace, ``+`` or ``/``.
_COMPACT_JWS = re.compile(rb"([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]*)")
#: Last characters whose unused low bits are zero, by segment length mod 4 (RFC 4648 3.5).
_CANONICAL_LAST = {2: frozenset(b"AQgw"), 3: frozenset(b"AEIMQUYcgkosw048")}


def _b64json(segment: bytes, what: str) -> dict[str, Any]:
    # split_jws already admitted only canonical base64url: decoding cannot fail.
    try:
        raw = base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):  # pragma: no cover - excluded by split_jws
        raise JWTDecodeError(f"Invalid token: invalid {what} encoding") from None
    value = loads_object(raw)
    if value is None:
        raise JWTDecodeError(f"Invalid token: {what} must be a JSON object")
    return value


def split_jws(token: str) -> tuple[bytes, bytes, bytes, bytes]:
    """``(signing_input, header, payload, signature)`` segments of a canonical compact JWS."""
    if not token:
        raise JWTDecodeError("Token must not be empty")
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError:
        raise JWTDecodeError("Invalid token: not base64url") from None
    match = _COMPACT_JWS.fullmatch(raw)
    if match is None:
        if raw.count(b".") != 2:
            raise JWTDecodeError("Invalid token: Not enough segments")
        raise JWTDecodeError("Invalid token: not canonical base64url")
    header, payload, signature = segments = match.groups()
    # One spelling per token: the unused bits of each segment's last character are zero.
    for segment in segments:
        rest = len(segment) & 3
        if rest and (rest == 1 or segment[-1] not in _CANONICAL_LAST[rest]):
            raise JWTDecodeError("Invalid token: not canonical base64url")
    return raw[: len(header) + 1 + len(payload)], header, payload, signature


def _checked_header(segment: bytes) -> dict[str, Any]:
    header = _b64json(segment, "header")
    if "crit" in header or "b64" in header:
        raise JWTDecodeError("Invalid token: unsupported critical header")
    for name in ("alg", "typ", "kid", "cty"):
        if name in header and not isinstance(header[name], str):
            raise JWTDecodeError(f"Invalid token: header {name} must be a string")
    if "alg" not in header:
        raise JWTDecodeError("Invalid token: missing alg header")
    return header


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a canonical compact JWS, signature NOT checked (for revoke_token)."""
    _, header_segment, payload_segment, _ = split_jws(token)
    _checked_header(header_segment)
    return _b64json(payload_segment, "payload")


@dataclass(slots=True)
class ParsedJWS:
    """A compact JWS split and parsed once: its header and claims, signature not checked."""

    signing_input: bytes
    header_segment: bytes
    header: dict[str, Any]
    header_cached: bool
    claims: dict[str, Any]
    signature_segment: bytes


def parse_jws(token: str, keys: KeySet) -> ParsedJWS:
    """Split ``token`` (canonical segments only) and parse its header and claims."""
    signing_input, header_segment, payload_segment, signature_segment = split_jws(token)
    # Only headers whose signature verified are cached (per key set), so junk
    # tokens cannot fill the cache.
    header = keys.headers.get(header_segment)
    cached = header is not None
    if header is None:
        header = _checked_header(header_segment)
    claims = _b64json(payload_segment, "payload")
    return ParsedJWS(signing_input, header_segment, header, cached, claims, signature_segment)


def check_signature(
    parsed: ParsedJWS, keys: KeySet, candidates: Sequence[tuple[Algorithm, Any]] | None
) -> dict[str, Any]:
    """The claims of ``parsed`` once one of ``candidates`` verified its signature.

    The header's ``alg`` only selects among the algorithms the keys allow; ``jwk``,
    ``jku`` and ``x5u`` are never used, and ``kid`` only narrows the keys an
    identity provider's key ring already holds.
    """
    if not candidates:
        raise JWTDecodeError("Invalid token: no key may verify it (alg or kid not allowed)")
    segment = parsed.signature_segment
    signature = base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    for alg, key in candidates:
        if alg.verify(parsed.signing_input, key, signature):
            if not parsed.header_cached:
                keys.remember_header(parsed.header_segment, parsed.header)
            return parsed.claims
    raise TokenInvalidSignatureError("Signature verification failed")


def decode_jws(token: str, keys: KeySet, verify: bool = True) -> dict[str, Any]:
    """Check the signature of a compact JWS with ``keys`` and return its claims
    (not yet validated)."""
    parsed = parse_jws(token, keys)
    if not verify:
        return parsed.claims
    candidates = keys.verifiers.get(parsed.header["alg"])
    if not candidates:
        raise JWTDecodeError("Invalid token: The specified alg value is not allowed")
    return check_signature(parsed, keys, candidates)


def _numeric(claims: Mapping[str, Any], name: str) -> float | None:
    """A NumericDate claim as a finite float; booleans, strings, NaN and infinities fail."""
    value = claims.get(name)
    if value is None:
        if name in claims:
            raise JWTDecodeError(f"Invalid token: {name} must be a number")
        return None
    if type(value) is float:
        number = value
    elif type(value) is int:
        try:
            number = float(value)
        except OverflowError:
            raise JWTDecodeError(f"Invalid token: {name} is out of range") from None
    else:
        raise JWTDecodeError(f"Invalid token: {name} must be a number")
    if not math.isfinite(number):
        raise JWTDecodeError(f"Invalid token: {name} must be a finite number")
    return number


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
