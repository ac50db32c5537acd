"""What verifying a token cannot cost less than in CPython, and where AuthX spends the rest.

The floor of a compact JWS is: split on dots, decode the three base64url segments
with the C decoder, ``json.loads`` the header and the payload, and check the
signature with one C call (``hmac.digest`` + ``hmac.compare_digest`` for HS256; the
bare ``cryptography`` verify for RS256 and ES256). Nothing else: no claim checks,
no payload object, no revocation, no session.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import time
import timeit
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from authx import AuthX, AuthXConfig, RequestToken

__all__ = ["asymmetric_auths", "floor_call", "measure", "pem_pair", "stage_profile"]


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def floor_call(token: str, algorithm: str, key: Any) -> Callable[[], None]:
    """The floor for ``token``: ``key`` is the HMAC secret (bytes) or the public key."""
    if algorithm == "HS256":

        def check(message: bytes, raw: bytes) -> None:
            assert hmac.compare_digest(hmac.digest(key, message, "sha256"), raw)

    elif algorithm == "RS256":

        def check(message: bytes, raw: bytes) -> None:
            key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())

    else:  # ES256: the JWS signature is r || s, cryptography wants DER

        def check(message: bytes, raw: bytes) -> None:
            der = encode_dss_signature(
                int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
            )
            key.verify(der, message, ec.ECDSA(hashes.SHA256()))

    def floor() -> None:
        h, p, s = token.split(".")
        json.loads(_b64(h))
        json.loads(_b64(p))
        check(f"{h}.{p}".encode(), _b64(s))

    floor()  # a wrong key fails here, not silently in the timing
    return floor


def pem_pair(private: Any) -> tuple[str, str]:
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def asymmetric_auths() -> dict[str, tuple[AuthX[Any], Any]]:
    """An AuthX signing RS256 (2048-bit) and one signing ES256, with their public keys."""
    made: dict[str, tuple[AuthX[Any], Any]] = {}
    for algorithm, private in (
        ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("ES256", ec.generate_private_key(ec.SECP256R1())),
    ):
        private_pem, public_pem = pem_pair(private)
        config = AuthXConfig(
            JWT_ALGORITHM=algorithm,
            JWT_PRIVATE_KEY=private_pem,
            JWT_PUBLIC_KEY=public_pem,
            JWT_WS_RATE_LIMIT=1e9,
            JWT_WS_SUBJECT_RATE_LIMIT=1e9,
        )
        made[algorithm] = (AuthX(config=config), private.public_key())
    return made


def measure(call: Callable[[], Any], number: int, repeats: int) -> float:
    """Best microseconds per ``call`` over ``repeats`` batches of ``number``."""
    return min(timeit.repeat(call, number=number, repeat=repeats)) / number * 1e6


def verification_call(auth: AuthX[Any], token: str) -> Callable[[], Any]:
    """Signature, claims and the payload object, through the public ``verify_token``."""
    found = RequestToken(token=token, location="headers")
    return lambda: auth.verify_token(found, verify_csrf=False)


async def _per_task(operation: Callable[[Any], Any], sockets: list[Any]) -> float:
    start = time.perf_counter()
    for websocket in sockets:
        await asyncio.create_task(operation(websocket))
    return (time.perf_counter() - start) / len(sockets) * 1e6


async def stage_profile(
    auth: AuthX[Any], token: str, make_socket: Callable[[str], Any], ops: int, repeats: int
) -> list[tuple[str, float]]:
    """Microseconds of each stage of a WebSocket authentication (best of ``repeats``).

    Each stage is timed alone, so the parts do not add up exactly to the whole: the
    whole also pays the event loop's task and the calls between stages.
    """
    from authx import token as _token
    from authx.websocket._transports import ws_request_token

    config = auth.config
    keys = auth._verifier.keys
    claims = _token.decode_jws(token, keys)
    payload = auth._verifier.decode(token)
    admission = auth._ws._admission
    found = RequestToken(token=token, location="query")
    number = ops * 5
    stages = [
        ("split, canonical check", measure(lambda: _token.split_jws(token), number, repeats)),
        ("parse header + payload", measure(lambda: _token.parse_jws(token, keys), number, repeats)),
        (
            "signature",
            measure(lambda: _token.decode_jws(token, keys), number, repeats)
            - measure(lambda: _token.parse_jws(token, keys), number, repeats),
        ),
        ("claim checks", measure(lambda: _token.validate_claims(claims), number, repeats)),
        (
            "payload object",
            measure(lambda: type(payload).from_claims(dict(claims)), number, repeats),
        ),
        (
            "type check (RequestToken.check)",
            measure(lambda: found.check(payload, True, False, False), number, repeats),
        ),
    ]

    async def locate(websocket: Any) -> None:
        await ws_request_token(websocket, config)

    async def admit(websocket: Any) -> None:
        address = admission.address(websocket)
        await admission.admit(address)
        await admission.admit_subject(payload.sub, address)

    async def revoked(websocket: Any) -> None:
        await auth._verifier.check_revoked(token, payload)

    async def nothing(websocket: Any) -> None:
        return None

    async def whole(websocket: Any) -> None:
        await auth._ws_auth_required(websocket)

    timed: dict[str, list[float]] = {}
    for _ in range(repeats):
        for name, operation in (
            ("empty task", nothing),
            ("token location", locate),
            ("admission", admit),
            ("revocation check (memory store)", revoked),
            ("whole authentication", whole),
        ):
            sockets = [make_socket(token) for _ in range(ops)]
            timed.setdefault(name, []).append(await _per_task(operation, sockets))
    task = min(timed.pop("empty task"))
    whole_us = min(timed.pop("whole authentication")) - task
    stages += [(name, min(values) - task) for name, values in timed.items()]
    accounted = sum(us for _, us in stages)
    stages.append(("session, task end, calls between", whole_us - accounted))
    stages.append(("whole authentication", whole_us))
    return stages
