"""Provider (JWKS) tokens against the application's own RS256 tokens, in-process.

A JWKS is served by a small HTTP server on 127.0.0.1 (a thread of this process);
``auth.load_keys()`` fetches it once, then every verification uses the cached key.
The same RSA key signs both kinds of token, so the difference is the key lookup.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from authx import AuthX, AuthXConfig
from bench._floor import pem_pair

__all__ = ["measure_provider_tokens"]

KID = "bench-key"


@contextmanager
def jwks_server(jwks: dict[str, Any]) -> Iterator[str]:
    body = json.dumps(jwks).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks"
    finally:
        server.shutdown()
        server.server_close()


async def _per_call(auth: AuthX[Any], token: str, ops: int) -> float:
    from bench.ws_auth import handshake_websocket

    sockets = [handshake_websocket(token) for _ in range(ops)]
    start = time.perf_counter()
    for websocket in sockets:
        await asyncio.create_task(auth._ws_auth_required(websocket))
    return (time.perf_counter() - start) / ops * 1e6


async def measure_provider_tokens(repeats: int, ops: int) -> tuple[float, float]:
    """Best microseconds per WebSocket authentication: (own RS256 token, provider token)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem, public_pem = pem_pair(key)
    own = AuthX(
        config=AuthXConfig(
            JWT_ALGORITHM="RS256", JWT_PRIVATE_KEY=private_pem, JWT_PUBLIC_KEY=public_pem
        )
    )
    own_token = own.create_access_token("bench-user", scopes=["chat:read"])
    claims = jwt.decode(own_token, public_pem, algorithms=["RS256"])
    claims.pop("type", None)  # provider tokens carry none
    claims["iss"] = "https://idp.bench"
    provider_token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})
    jwk = {**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": KID, "alg": "RS256"}
    with jwks_server({"keys": [jwk]}) as url:
        provider = AuthX(
            config=AuthXConfig(
                JWT_JWKS_URL=url,
                JWT_DECODE_ISSUER="https://idp.bench",
                JWT_DECODE_ALGORITHMS=["RS256"],
            )
        )
        await provider.load_keys()
        assert (await _per_call(own, own_token, 10)) > 0
        assert (await _per_call(provider, provider_token, 10)) > 0
        own_us, provider_us = [], []
        for _ in range(repeats):
            own_us.append(await _per_call(own, own_token, ops))
            provider_us.append(await _per_call(provider, provider_token, ops))
    return min(own_us), min(provider_us)
