"""Identity-provider tokens beside the application's own, through real HTTP routes.

The provider here is a small discovery + JWKS server on 127.0.0.1 that the test
controls (keys, outage, request count); tests/oidc runs the same library against
a real OpenID Connect provider.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from core_support import SECRET, bearer, serve
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from authx import AuthX, AuthXConfig, RequestToken
from authx.exceptions import BadConfigurationError


class FakeProvider:
    """Serves discovery and a JWKS on 127.0.0.1; signs tokens with its current key."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "key-1"
        self.requests: list[str] = []
        self.down = False
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.requests.append(self.path)
                if provider.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": provider.issuer, "jwks_uri": f"{provider.issuer}/jwks"}
                elif self.path == "/jwks":
                    body = {"keys": [provider.jwk()]}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def jwk(self) -> dict[str, Any]:
        public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}

    @property
    def public_pem(self) -> str:
        return (
            self.key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def token(
        self,
        sub: str = "alice",
        key: Any = None,
        algorithm: str = "RS256",
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        body = {"iss": self.issuer, "sub": sub, "aud": "my-api", "iat": now, "exp": now + 300}
        body.update(claims)
        return jwt.encode(
            body,
            key if key is not None else self.key,
            algorithm=algorithm,
            headers={"kid": self.kid, **(headers or {})},
        )


def hs256_with(provider: FakeProvider, secret: str) -> str:
    """Key confusion: an HS256 token whose HMAC secret is the provider's public PEM
    (signed by hand: PyJWT refuses PEM keys as HMAC secrets)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = {"alg": "HS256", "typ": "JWT", "kid": provider.kid}
    claims = {"iss": provider.issuer, "sub": "alice", "aud": "my-api", "exp": time.time() + 60}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    fake = FakeProvider()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def provider_auth(provider: FakeProvider, **settings: Any) -> AuthX[Any]:
    options: dict[str, Any] = {
        "JWT_OIDC_ISSUER": provider.issuer,
        "JWT_DECODE_AUDIENCE": "my-api",
        "JWT_ENCODE_AUDIENCE": "my-api",  # the app's own tokens are for the same API
        "JWT_DECODE_ALGORITHMS": ["HS256", "RS256"],
        "JWT_SECRET_KEY": SECRET,
        **settings,
    }
    return AuthX(config=AuthXConfig(**options))


async def status(auth: AuthX[Any], token: str, path: str = "/access") -> tuple[int, Any]:
    async with serve(auth) as client:
        response = await client.get(path, headers=bearer(token))
    return response.status_code, response.json()


async def test_provider_and_own_tokens_side_by_side(provider: FakeProvider) -> None:
    auth = provider_auth(provider)
    assert (await status(auth, provider.token()))[0] == 200
    own = auth.create_access_token("service")  # HS256, no issuer
    code, body = await status(auth, own)
    assert (code, body["sub"]) == (200, "service")
    # Discovery, then the JWKS: two requests, then the cache answers.
    assert provider.requests == ["/.well-known/openid-configuration", "/jwks"]


async def test_provider_only_setup_needs_no_secret(provider: FakeProvider) -> None:
    auth = AuthX(
        config=AuthXConfig(
            JWT_JWKS_URL=f"{provider.issuer}/jwks",
            JWT_DECODE_ISSUER=provider.issuer,
            JWT_DECODE_AUDIENCE="my-api",
            JWT_DECODE_ALGORITHMS=["RS256"],
        )
    )
    await auth.load_keys()
    assert provider.requests == ["/jwks"]
    assert (await status(auth, provider.token()))[0] == 200
    with pytest.raises(BadConfigurationError):
        auth.create_access_token("alice")  # no signing key of its own


@pytest.mark.parametrize(
    "forge",
    [
        "other-key-same-kid",
        "wrong-issuer",
        "wrong-audience",
        "expired",
        "alg-not-allowed",
        "hmac-with-public-key",
        "no-kid-other-key",
        "embedded-jwk",
        "refresh-token",
        "logout-typ",
    ],
)
async def test_forged_provider_tokens_are_refused(provider: FakeProvider, forge: str) -> None:
    auth = provider_auth(provider)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tokens = {
        "other-key-same-kid": lambda: provider.token(key=other),
        "wrong-issuer": lambda: provider.token(iss="https://evil.example"),
        "wrong-audience": lambda: provider.token(aud="another-api"),
        "expired": lambda: provider.token(exp=int(time.time()) - 10),
        "alg-not-allowed": lambda: provider.token(algorithm="RS384"),
        "hmac-with-public-key": lambda: hs256_with(provider, provider.public_pem),
        "no-kid-other-key": lambda: jwt.encode(
            {"iss": provider.issuer, "sub": "alice", "aud": "my-api", "exp": time.time() + 60},
            other,
            algorithm="RS256",
        ),
        "embedded-jwk": lambda: provider.token(
            key=other,
            headers={
                "jwk": json.loads(RSAAlgorithm.to_jwk(other.public_key())),
                "jku": f"{provider.issuer}/attacker-jwks",
            },
        ),
        "refresh-token": lambda: provider.token(typ="Refresh"),
        "logout-typ": lambda: provider.token(headers={"typ": "logout+jwt"}),
    }
    token = tokens[forge]()
    code, body = await status(auth, token)
    assert code == 401, body
    assert "/attacker-jwks" not in provider.requests  # nothing in a token causes a fetch


async def test_token_without_kid_is_checked_against_the_issuers_keys(
    provider: FakeProvider,
) -> None:
    auth = provider_auth(provider)
    token = jwt.encode(
        {"iss": provider.issuer, "sub": "alice", "aud": "my-api", "exp": time.time() + 60},
        provider.key,
        algorithm="RS256",
    )
    assert (await status(auth, token))[0] == 200


async def test_access_token_typ_is_accepted(provider: FakeProvider) -> None:
    auth = provider_auth(provider)
    assert (await status(auth, provider.token(headers={"typ": "at+jwt"})))[0] == 200


@pytest.mark.parametrize(
    ("claim", "value", "setting"),
    [
        ("scope", "read admin:*", "scope"),
        ("scp", ["read", "admin:*"], "scp"),
        ("permissions", ["read", "admin:*"], "permissions"),
        ("realm_access", {"roles": ["read", "admin:*"]}, "realm_access.roles"),
    ],
)
async def test_scopes_come_from_the_configured_claim(
    provider: FakeProvider, claim: str, value: Any, setting: str
) -> None:
    auth = provider_auth(provider, JWT_SCOPES_CLAIM=setting)
    token = provider.token(**{claim: value})
    code, body = await status(auth, token, "/admin")
    assert code == 200, body
    assert body["scopes"] == ["read", "admin:*"]
    code, body = await status(auth, provider.token(), "/admin")
    assert code == 403


async def test_provider_down_from_the_start_is_503(provider: FakeProvider) -> None:
    provider.down = True
    auth = provider_auth(provider)
    code, body = await status(auth, provider.token())
    assert code == 503
    assert body["error_type"] == "KeySourceUnavailableError"
    # The application's own tokens do not depend on the provider.
    assert (await status(auth, auth.create_access_token("service")))[0] == 200


def test_provider_urls_must_be_https_outside_loopback() -> None:
    with pytest.raises(BadConfigurationError, match="JWT_OIDC_ISSUER"):
        AuthXConfig(JWT_OIDC_ISSUER="http://idp.example.com")
    with pytest.raises(BadConfigurationError, match="JWT_JWKS_URL"):
        AuthXConfig(JWT_JWKS_URL="http://idp.example.com/jwks")


async def test_a_provider_token_without_jti_has_none(provider: FakeProvider) -> None:
    auth = provider_auth(provider)
    await auth.load_keys()
    payload = auth.verify_token(RequestToken(token=provider.token(), location="headers"))
    assert payload.jti is None  # not an invented id that revoke_token would accept in vain


async def test_subject_revocation_outlives_the_apps_own_token_lifetimes(
    provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A provider token may live longer than the app's own tokens: the revocation must too.
    auth = provider_auth(provider, JWT_ACCESS_TOKEN_EXPIRES=1, JWT_REFRESH_TOKEN_EXPIRES=None)
    store = await auth.get_store()
    token = provider.token(sub="rita", exp=int(time.time()) + 3600)
    await auth.revoke_subject("rita")
    assert (await status(auth, token))[0] == 401
    # An hour later (the app's own tokens live one second), the revocation still holds.
    issued = time.time() - 5
    later = time.time() + 3600
    monkeypatch.setattr(time, "time", lambda: later)
    assert await store.is_revoked(None, "rita", issued)
