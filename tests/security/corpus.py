"""The attack corpus: keys, a JWS forger, and every hostile token the security tests present.

The server under attack signs with RS256 (so that key confusion can be tried); the
corpus is grouped by attack class, each class a list of ``(label, token)`` variants.
Every variant must be refused with an authentication failure (HTTP 401 / close 4001)
at every entry point.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import RSAAlgorithm

from authx import AuthX, AuthXConfig

SUBJECT = "alice"
#: Well above 1000, Python's default recursion limit (json.loads raises RecursionError).
DEPTH = 1600
#: JWT_MAX_TOKEN_SIZE of the attacked servers: small enough for a URL, large enough for
#: the nested-JSON tokens, so those reach the decoder.
MAX_TOKEN_SIZE = 6144
ALLOWED_ORIGIN = "http://allowed.test"

_RS256 = RSAAlgorithm(RSAAlgorithm.SHA256)


def _rsa_pair() -> tuple[rsa.RSAPrivateKey, str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return key, private, public


SERVER_KEY, SERVER_PRIVATE_PEM, SERVER_PUBLIC_PEM = _rsa_pair()
ATTACKER_KEY, ATTACKER_PRIVATE_PEM, ATTACKER_PUBLIC_PEM = _rsa_pair()


def server_env(**overrides: str) -> dict[str, str]:
    """The environment of an attacked server: RS256, every location and transport."""
    env = {
        "JWT_ALGORITHM": "RS256",
        "JWT_PRIVATE_KEY": SERVER_PRIVATE_PEM,
        "JWT_PUBLIC_KEY": SERVER_PUBLIC_PEM,
        "JWT_TOKEN_LOCATION": '["headers", "cookies", "query", "json"]',
        "JWT_WS_TOKEN_LOCATION": (
            '["query", "headers", "subprotocol", "cookies", "ticket", "message"]'
        ),
        "JWT_WS_ALLOWED_ORIGINS": f'["{ALLOWED_ORIGIN}"]',
        "JWT_WS_AUTH_MESSAGE_TIMEOUT": "3",
        "JWT_MAX_TOKEN_SIZE": str(MAX_TOKEN_SIZE),
        "JWT_COOKIE_SECURE": "false",
    }
    env.update(overrides)
    return env


#: Issues the genuine tokens the attacked servers accept.
ISSUER = AuthX(
    config=AuthXConfig(
        JWT_ALGORITHM="RS256",
        JWT_PRIVATE_KEY=SERVER_PRIVATE_PEM,
        JWT_PUBLIC_KEY=SERVER_PUBLIC_PEM,
    )
)


def genuine(sub: str = SUBJECT, **kwargs: Any) -> str:
    """A valid access token for ``sub`` (kwargs as for ``create_access_token``)."""
    return ISSUER.create_access_token(uid=sub, **kwargs)


# Forging --------------------------------------------------------------------


def b64(data: bytes) -> str:
    """Canonical base64url: URL alphabet, no padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def dumps(value: Any) -> str:
    """Compact JSON; NaN and Infinity allowed, as Python writes them."""
    return json.dumps(value, separators=(",", ":"))


def claims(sub: Any = SUBJECT, **overrides: Any) -> dict[str, Any]:
    """A complete valid claim set; an override of ``DROP`` removes that claim."""
    now = int(time.time())
    values: dict[str, Any] = {
        "sub": sub,
        "jti": str(uuid.uuid4()),
        "type": "access",
        "fresh": False,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not DROP}


DROP = object()
HEADER = {"alg": "RS256", "typ": "JWT"}


def sign_rs256(signing_input: bytes, key: Any = SERVER_KEY) -> bytes:
    return bytes(_RS256.sign(signing_input, key))


def sign_hmac(signing_input: bytes, secret: bytes, alg: str = "HS256") -> bytes:
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    return hmac.new(secret, signing_input, digest).digest()


def forge(
    header: Any = None,
    payload: Any = None,
    *,
    raw_header: str | None = None,
    raw_payload: str | None = None,
    signer: Callable[[bytes], bytes] | None = sign_rs256,
) -> str:
    """A compact JWS of ``header`` and ``payload`` (JSON values, or raw JSON text).

    ``signer`` signs the signing input (the server's RS256 key by default); ``None``
    leaves the signature empty.
    """
    head = raw_header if raw_header is not None else dumps(HEADER if header is None else header)
    body = (
        raw_payload if raw_payload is not None else dumps(claims() if payload is None else payload)
    )
    signing_input = f"{b64(head.encode())}.{b64(body.encode())}"
    signature = b"" if signer is None else signer(signing_input.encode())
    return f"{signing_input}.{b64(signature)}"


# Respellings: other spellings of the same bytes ------------------------------

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def flip_unused_bits(segment: str) -> str:
    """``segment`` with the unused low bits of its last character set: same bytes."""
    unused = {2: 4, 3: 2}.get(len(segment) % 4, 0)
    assert unused, "this segment has no unused bits"
    index = _ALPHABET.index(segment[-1])
    return segment[:-1] + _ALPHABET[index | ((1 << unused) - 1)]


def _standard_alphabet(segment: str) -> str:
    return segment.replace("-", "+").replace("_", "/")


def respellings(token: str) -> list[tuple[str, str]]:
    """Non-canonical spellings of ``token``: each decodes to the same bytes, or nearly.

    Every one must be refused: a token has exactly one accepted spelling.
    """
    head, body, sig = token.split(".")
    assert "-" in sig or "_" in sig, "pick another token"
    assert len(sig) % 4 in (2, 3), "pick another token"
    pad = "=" * (-len(sig) % 4)
    variants = [
        ("sig-append-bang", f"{head}.{body}.{sig}!!!!"),
        ("sig-insert-dollar", f"{head}.{body}.{sig[:40]}$$$${sig[40:]}"),
        ("payload-insert-dollar", f"{head}.{body[:8]}$$$${body[8:]}.{sig}"),
        ("sig-padding", f"{head}.{body}.{sig}{pad}"),
        ("sig-extra-padding", f"{head}.{body}.{sig}{pad}===="),
        ("header-padding", f"{head}{'=' * (-len(head) % 4) or '=='}.{body}.{sig}"),
        ("sig-plus-slash", f"{head}.{body}.{_standard_alphabet(sig)}"),
        ("sig-inner-space", f"{head}.{body}.{sig[:30]} {sig[30:]}"),
        ("payload-inner-space", f"{head}.{body[:12]} {body[12:]}.{sig}"),
        ("sig-unused-low-bits", f"{head}.{body}.{flip_unused_bits(sig)}"),
        ("sig-length-1-mod-4", f"{head}.{body}.{sig}{'A' * ((1 - len(sig)) % 4)}"),
        ("sig-inner-tab", f"{head}.{body}.{sig[:30]}\t{sig[30:]}"),
        ("sig-inner-newline", f"{head}.{body}.{sig[:30]}\n{sig[30:]}"),
        ("sig-trailing-newline", f"{token}\n"),
    ]
    for label, variant in variants:
        assert variant != token, label
    return variants


def respellable(sub: str = SUBJECT, **kwargs: Any) -> str:
    """A genuine token whose signature has a '-' or '_' and unused low bits."""
    while True:
        token = genuine(sub, **kwargs)
        sig = token.rsplit(".", 1)[1]
        if ("-" in sig or "_" in sig) and len(sig) % 4 in (2, 3):
            return token


# The corpus -----------------------------------------------------------------


def _public_jwk(key: Any) -> dict[str, Any]:
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    assert isinstance(jwk, dict)
    return {**jwk, "kid": "attacker", "use": "sig", "alg": "RS256"}


def _attacker_cert() -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ATTACKER_KEY.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(ATTACKER_KEY, hashes.SHA256())
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def _attacker(header: dict[str, Any], payload: Any = None) -> str:
    return forge(header, payload, signer=lambda data: sign_rs256(data, ATTACKER_KEY))


def _nested(open_: str, close: str, depth: int = DEPTH) -> str:
    return open_ * depth + close * depth


def alg_none() -> list[tuple[str, str]]:
    genuine_sig = genuine().rsplit(".", 1)[1]
    variants = []
    for alg in ("none", "None", "NONE", "nOnE"):
        header = {"alg": alg, "typ": "JWT"}
        variants.append((f"{alg}-empty-sig", forge(header, signer=None)))
        unsigned = forge(header, signer=None)
        variants.append((f"{alg}-with-sig", unsigned + genuine_sig))
        variants.append((f"{alg}-junk-sig", unsigned + "c2lnbmF0dXJl"))
    variants.append(("none-no-typ", forge({"alg": "none"}, signer=None)))
    variants.append(("none-two-segments", forge({"alg": "none"}, signer=None)[:-1]))
    return variants


def key_confusion() -> list[tuple[str, str]]:
    """HMAC tokens keyed with the server's *public* key, which anyone can read."""
    pem = SERVER_PUBLIC_PEM.encode()
    der = SERVER_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    variants = []
    for alg in ("HS256", "HS384", "HS512"):
        for label, secret in (("pem", pem), ("pem-stripped", pem.strip()), ("der", der)):
            token = forge(
                {"alg": alg, "typ": "JWT"}, signer=lambda d, s=secret, a=alg: sign_hmac(d, s, a)
            )
            variants.append((f"{alg}-{label}", token))
    variants.append(("RS256-header-hmac-sig", forge(signer=lambda d: sign_hmac(d, pem, "HS256"))))
    return variants


def critical_headers() -> list[tuple[str, str]]:
    return [
        ("crit-exp", forge({**HEADER, "crit": ["exp"], "exp": 1})),
        ("crit-b64", forge({**HEADER, "crit": ["b64"], "b64": False})),
        ("crit-unknown", forge({**HEADER, "crit": ["x-unknown"], "x-unknown": True})),
        ("crit-empty", forge({**HEADER, "crit": []})),
        ("b64-false", forge({**HEADER, "b64": False})),
    ]


def embedded_keys(jwks_url: str) -> list[tuple[str, str]]:
    """Attacker-signed tokens naming the attacker's key in their header: jwk, jku, x5u, ..."""
    jwk = _public_jwk(ATTACKER_KEY)
    cert = _attacker_cert()
    return [
        ("jwk", _attacker({**HEADER, "jwk": jwk})),
        ("jwk-kid", _attacker({**HEADER, "kid": "attacker", "jwk": jwk})),
        ("jku", _attacker({**HEADER, "jku": jwks_url})),
        ("jku-kid", _attacker({**HEADER, "kid": "attacker", "jku": jwks_url})),
        ("x5u", _attacker({**HEADER, "x5u": jwks_url.replace("jwks.json", "cert.pem")})),
        ("x5c", _attacker({**HEADER, "x5c": [cert]})),
        ("kid-attacker", _attacker({**HEADER, "kid": "attacker"})),
        ("kid-path", _attacker({**HEADER, "kid": "../../../../../../dev/null"})),
        (
            "kid-path-hmac-empty",
            forge(
                {"alg": "HS256", "typ": "JWT", "kid": "../../../../../../dev/null"},
                signer=lambda d: sign_hmac(d, b""),
            ),
        ),
        ("kid-sql", _attacker({**HEADER, "kid": "x' UNION SELECT 'secret"})),
    ]


INVALID_UTF8_HEADER = b'{"alg":"RS256","typ":"\xff"}'


def malformed() -> list[tuple[str, str]]:
    token = genuine()
    head, body, sig = token.split(".")
    return [
        ("dot", "."),
        ("two-dots", ".."),
        ("three-dots", "..."),
        ("one-segment", head),
        ("two-segments", f"{head}.{body}"),
        ("four-segments", f"{token}.{sig}"),
        ("five-segments-jwe-shape", f"{head}.{body}.{sig}.{body}.{sig}"),
        ("empty-header", f".{body}.{sig}"),
        ("empty-payload", f"{head}..{sig}"),
        ("empty-signature", f"{head}.{body}."),
        ("header-not-base64", f"!!!!.{body}.{sig}"),
        ("header-not-json", forge(raw_header="not json")),
        ("header-json-array", forge(raw_header='["RS256"]')),
        ("header-json-string", forge(raw_header='"RS256"')),
        ("header-json-null", forge(raw_header="null")),
        ("header-bom", forge(raw_header="\ufeff" + dumps(HEADER))),
        ("header-truncated-json", forge(raw_header='{"alg":"RS256"')),
        ("header-invalid-utf8", f"{b64(INVALID_UTF8_HEADER)}.{body}.{sig}"),
        ("payload-not-json", forge(raw_payload="not json")),
        ("payload-json-array", forge(raw_payload=dumps([claims()]))),
        ("payload-json-number", forge(raw_payload="42")),
        ("payload-invalid-utf8", f"{head}.{b64(bytes([0x7B, 0xFF, 0xFE, 0x7D]))}.{sig}"),
        ("signature-truncated", f"{head}.{body}.{sig[:-8]}"),
        ("signature-of-other-token", f"{head}.{body}.{genuine().rsplit('.', 1)[1]}"),
        ("non-ascii", f"{head}.{body}.{sig[:-2]}é"),
        ("non-ascii-dots", "é.é.é"),
        ("nul-byte", f"{head}.{body}.{sig}\x00"),
        ("segments-swapped", f"{body}.{head}.{sig}"),
        ("only-whitespace-segments", "   .   .   "),
    ]


def header_types() -> list[tuple[str, str]]:
    """Correctly signed tokens whose header fields have the wrong JSON type."""
    variants = []
    for label, value in (
        ("list", ["RS256"]),
        ("object", {"RS256": True}),
        ("number", 256),
        ("true", True),
        ("null", None),
    ):
        variants.append((f"alg-{label}", forge({"alg": value, "typ": "JWT"})))
    for field in ("typ", "kid"):
        for label, value in (
            ("number", 1),
            ("list", ["JWT"]),
            ("object", {"JWT": 1}),
            ("true", True),
        ):
            variants.append((f"{field}-{label}", forge({**HEADER, field: value})))
    return variants


def claim_types() -> list[tuple[str, str]]:
    """Correctly signed tokens whose claims have the wrong JSON type."""
    wrong: list[tuple[str, dict[str, Any]]] = [
        ("sub-int", claims(sub=42)),
        ("sub-list", claims(sub=["alice"])),
        ("sub-null", claims(sub=None)),
        ("sub-object", claims(sub={"id": "alice"})),
        ("sub-missing", claims(sub=DROP)),
        ("exp-string", claims(exp=str(int(time.time()) + 600))),
        ("exp-list", claims(exp=[int(time.time()) + 600])),
        ("nbf-string", claims(nbf="0")),
        ("iat-string", claims(iat="0")),
        ("aud-int", claims(aud=1)),
        ("aud-object", claims(aud={"aud": "x"})),
        ("aud-list-of-int", claims(aud=[1, 2])),
        ("aud-true", claims(aud=True)),
        ("jti-int", claims(jti=7)),
        ("type-int", claims(type=1)),
        ("type-list", claims(type=["access"])),
        ("type-null", claims(type=None)),
        ("scopes-string", claims(scopes="admin:*")),
        ("scopes-list-of-int", claims(scopes=[1])),
    ]
    return [(label, forge(payload=value)) for label, value in wrong]


def non_finite_times() -> list[tuple[str, str]]:
    """exp / nbf / iat as NaN, Infinity, -Infinity, true or false (json.dumps writes them)."""
    variants = []
    for claim in ("exp", "nbf", "iat"):
        for label, value in (
            ("nan", float("nan")),
            ("inf", float("inf")),
            ("-inf", float("-inf")),
            ("true", True),
            ("false", False),
        ):
            variants.append((f"{claim}-{label}", forge(payload=claims(**{claim: value}))))
    variants.append(
        ("exp-1e400", forge(raw_payload=dumps(claims(exp=DROP))[:-1] + ',"exp":1e400}'))
    )
    return variants


def nested_json() -> list[tuple[str, str]]:
    """Header or payload nested deeper than Python's recursion limit."""
    deep_header = '{"alg":"RS256","typ":"JWT","x":' + _nested("[", "]") + "}"
    deep_claims = dumps(claims())[:-1] + ',"x":' + _nested("[", "]") + "}"
    # Objects take more bytes per level: unclosed, and just over the limit, to fit the bound.
    deep_objects = '{"":' * 1050
    return [
        ("header-arrays", forge(raw_header=_nested("[", "]"))),
        ("header-unclosed-arrays", forge(raw_header="[" * (DEPTH + 400))),
        ("header-field", forge(raw_header=deep_header)),
        ("payload-arrays-signed", forge(raw_payload=_nested("[", "]"))),
        ("payload-field-signed", forge(raw_payload=deep_claims)),
        ("payload-objects-signed", forge(raw_payload=deep_objects)),
        (
            "payload-field-attacker",
            forge(raw_payload=deep_claims, signer=lambda d: sign_rs256(d, ATTACKER_KEY)),
        ),
        ("payload-field-unsigned", forge(raw_payload=deep_claims, signer=None)),
    ]


def too_large() -> list[tuple[str, str]]:
    """Over JWT_MAX_TOKEN_SIZE: refused (TokenTooLargeError) before any decoding."""
    big = genuine(data={"pad": "x" * (MAX_TOKEN_SIZE * 3 // 4)})
    assert MAX_TOKEN_SIZE < len(big) < 7800, len(big)
    head, body, sig = genuine().split(".")
    return [
        ("genuine-but-large", big),
        ("garbage-just-over", "a" * (MAX_TOKEN_SIZE + 1)),
        ("huge-signature", f"{head}.{body}.{sig * (MAX_TOKEN_SIZE // len(sig) + 1)}"),
        ("huge-garbage", "eyJ" + "A" * 200_000),
    ]


def missing_type() -> list[tuple[str, str]]:
    """Genuine signature, but no ``type`` claim: refused where an access token is required."""
    return [
        ("no-type", forge(payload=claims(type=DROP))),
        ("no-type-no-fresh", forge(payload=claims(type=DROP, fresh=DROP))),
    ]


#: Attack class -> the variants of that class (``embedded-keys`` needs a JWKS URL).
CORPUS: dict[str, Callable[..., list[tuple[str, str]]]] = {
    "respelled": lambda: respellings(respellable()),
    "alg-none": alg_none,
    "key-confusion": key_confusion,
    "critical-headers": critical_headers,
    "embedded-keys": embedded_keys,
    "malformed": malformed,
    "header-types": header_types,
    "claim-types": claim_types,
    "non-finite-times": non_finite_times,
    "nested-json": nested_json,
    "too-large": too_large,
    "missing-type": missing_type,
}


@functools.cache
def corpus(attack: str, jwks_url: str = "") -> tuple[tuple[str, str], ...]:
    """The variants of ``attack``, made once per run."""
    make = CORPUS[attack]
    return tuple(make(jwks_url) if attack == "embedded-keys" else make())
