"""The identity provider's keys are read only from the configured URL: a redirect
is a failure, never followed to wherever it points."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from authx import AuthX, AuthXConfig
from authx.exceptions import KeySourceUnavailableError


@pytest.fixture
def jwks_server() -> Iterator[str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": "k1", "use": "sig"}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "/jwks")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = json.dumps({"keys": [jwk]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_keys_load_from_the_configured_url(jwks_server: str) -> None:
    auth = AuthX(config=AuthXConfig(JWT_JWKS_URL=f"{jwks_server}/jwks"))
    await auth.load_keys()


async def test_a_redirect_from_the_jwks_url_is_not_followed(jwks_server: str) -> None:
    auth = AuthX(config=AuthXConfig(JWT_JWKS_URL=f"{jwks_server}/moved"))
    with pytest.raises(KeySourceUnavailableError):
        await auth.load_keys()
