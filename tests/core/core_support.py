"""Helpers shared by the core tests: configs, a FastAPI app exposing every dependency, keys."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fastapi import Depends, FastAPI, Response
from fastapi.responses import JSONResponse

from authx import AuthX, AuthXConfig, AuthXDependency, RequestToken, TokenPayload

# 64 bytes and more, so that HS512 (which wants 64) does not warn either.
SECRET = "core-tests-secret-" + "s" * 64
OTHER_SECRET = "another-secret-" + "o" * 64
BASE_URL = "https://testserver"
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
EVERY_METHOD = ("GET", *UNSAFE_METHODS)


def make_config(**overrides: Any) -> AuthXConfig:
    """An HS256 config with a long secret; ``overrides`` replace any setting."""
    settings: dict[str, Any] = {"JWT_SECRET_KEY": SECRET}
    settings.update(overrides)
    return AuthXConfig(**settings)


def make_auth(**overrides: Any) -> AuthX[Any]:
    return AuthX(config=make_config(**overrides))


def short_secret() -> str:
    """A fresh HMAC secret shorter than 32 bytes (fresh, so no cached key hides a warning)."""
    return secrets.token_hex(8)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cookie_header(**cookies: str) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}


def payload_json(payload: TokenPayload) -> dict[str, Any]:
    return {
        "sub": payload.sub,
        "type": payload.type,
        "fresh": payload.fresh,
        "scopes": payload.scopes,
        "extra": payload.extra_dict,
    }


def token_json(found: RequestToken | None) -> dict[str, Any] | None:
    if found is None:
        return None
    return {"token": found.token, "type": found.type, "location": found.location}


def build_app(auth: AuthX[Any], handle_errors: bool = True) -> FastAPI:
    """A FastAPI app exposing every AuthX dependency on its own route."""
    app = FastAPI()
    if handle_errors:
        auth.handle_errors(app)

    def every_method(path: str) -> Callable[[Any], Any]:
        # One route per method, so each has its own OpenAPI operation id.
        def register(endpoint: Any) -> Any:
            for method in EVERY_METHOD:
                app.add_api_route(path, endpoint, methods=[method])
            return endpoint

        return register

    @every_method("/access")
    async def access(payload: TokenPayload = auth.ACCESS_REQUIRED) -> dict[str, Any]:
        return payload_json(payload)

    @every_method("/refresh")
    async def refresh(payload: TokenPayload = auth.REFRESH_REQUIRED) -> dict[str, Any]:
        return payload_json(payload)

    @every_method("/fresh")
    async def fresh(payload: TokenPayload = auth.FRESH_REQUIRED) -> dict[str, Any]:
        return payload_json(payload)

    @every_method("/admin")
    async def admin(
        payload: TokenPayload = Depends(auth.scopes_required("admin:users:edit", "read")),
    ) -> dict[str, Any]:
        return payload_json(payload)

    @app.get("/optional/access")
    async def optional_access(found: RequestToken | None = auth.ACCESS_TOKEN) -> Any:
        return token_json(found)

    @app.get("/optional/refresh")
    async def optional_refresh(found: RequestToken | None = auth.REFRESH_TOKEN) -> Any:
        return token_json(found)

    @app.get("/subject")
    async def subject(current: Any = auth.CURRENT_SUBJECT) -> Any:
        return {"subject": current}

    @app.post("/login")
    async def login(deps: AuthXDependency[Any] = auth.BUNDLE) -> dict[str, str]:
        pair = deps.create_token_pair("alice", fresh=True)
        deps.set_access_cookies(pair.access_token)
        deps.set_refresh_cookies(pair.refresh_token)
        return {"access_token": pair.access_token, "refresh_token": pair.refresh_token}

    @app.post("/logout")
    async def logout(deps: AuthXDependency[Any] = auth.DEPENDENCY) -> dict[str, bool]:
        deps.unset_cookies()
        return {"ok": True}

    @app.post("/login/own-response")
    async def login_own_response() -> Response:
        # The AuthX methods used on a response the route builds itself.
        response = JSONResponse({"ok": True})
        auth.set_access_cookies(auth.create_access_token("alice"), response, max_age=60)
        auth.set_refresh_cookies(auth.create_refresh_token("alice"), response)
        return response

    return app


@asynccontextmanager
async def serve(
    auth_or_app: AuthX[Any] | FastAPI, handle_errors: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """A client for ``build_app(auth)`` (or for a ready app)."""
    app = (
        auth_or_app
        if isinstance(auth_or_app, FastAPI)
        else build_app(auth_or_app, handle_errors=handle_errors)
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as c:
        yield c


async def get_access(auth: AuthX[Any], token: str, path: str = "/access") -> httpx.Response:
    """GET ``path`` of a fresh app for ``auth`` with ``token`` as a bearer token."""
    async with serve(auth) as client:
        return await client.get(path, headers=bearer(token))


# Keys for the asymmetric algorithms, generated at run time -----------------------------

_GENERATORS: dict[str, Callable[[], Any]] = {
    "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "EdDSA": ed25519.Ed25519PrivateKey.generate,
}
_KEYS: dict[tuple[str, int], tuple[str, str]] = {}


def key_pair(algorithm: str, n: int = 0) -> tuple[str, str]:
    """The n-th (private PEM, public PEM) pair for ``algorithm``, made once per run."""
    if (algorithm, n) not in _KEYS:
        private_key = _GENERATORS[algorithm]()
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
        _KEYS[(algorithm, n)] = (private, public)
    return _KEYS[(algorithm, n)]


def set_cookies(response: httpx.Response) -> dict[str, dict[str, str]]:
    """The response's Set-Cookie headers: name -> {"value": ..., lowercased attribute: value}."""
    cookies: dict[str, dict[str, str]] = {}
    for header in response.headers.get_list("set-cookie"):
        first, *attributes = (part.strip() for part in header.split(";"))
        name, _, value = first.partition("=")
        cookie = {"value": value.strip('"')}
        for attribute in attributes:
            key, _, attr_value = attribute.partition("=")
            cookie[key.lower()] = attr_value
        cookies[name] = cookie
    return cookies
