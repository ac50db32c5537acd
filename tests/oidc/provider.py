"""A real OpenID Connect provider on 127.0.0.1, for the JWKS / OIDC tests.

The provider is `oidc-provider-mock <https://pypi.org/project/oidc-provider-mock/>`_
(a Flask app built on Authlib's OAuth 2 / OIDC server), served by Werkzeug's
threaded WSGI server in a background thread of the test process. It publishes
discovery at ``/.well-known/openid-configuration`` and its keys at ``/jwks``, and
issues RS256 ID tokens only through the authorization-code flow, which
:meth:`OIDCProvider.token` walks with httpx like a relying party would.

Release 0.4 needs Python 3.12, so the project (Python 3.11) uses 0.3.4, whose
ID-token signing goes through Authlib's ``get_jwt_config``. Authlib 1.7 and later
deprecate that hook (a ``DeprecationWarning`` on every token, an error under
``filterwarnings = error``) and then sign without a ``kid`` header. Two small
changes, made while the app is built and scoped to it, fill that gap and let the
keys rotate:

* its ``OpenIDCode`` extension is given the hooks Authlib now asks for, the same
  ones oidc-provider-mock 0.4 itself defines (``resolve_client_private_key``,
  ``get_client_claims``); the key set it signs with holds the current key, so
  the ID token's header names its ``kid``;
* its ``/jwks`` view serves the same key ring: the current key, and after
  ``rotate_keys(keep_previous=True)`` the earlier ones too.

Everything else (discovery, the authorization and token endpoints, the claims of
the ID token: ``iss``, ``aud``, ``iat``, ``exp``, ``auth_time``, ``nonce``,
``at_hash``) is the provider's own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import socket
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from datetime import timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx

if TYPE_CHECKING:
    from joserfc.jwk import RSAKey
    from werkzeug.serving import ThreadedWSGIServer

PACKAGE = "oidc_provider_mock"
HOST = "127.0.0.1"
ALGORITHM = "RS256"
#: The client id, and so the ``aud`` claim, that :meth:`OIDCProvider.token` uses by default.
DEFAULT_AUDIENCE = "authx-tests"
#: Where the provider sends the browser back. Nothing listens there: the flow reads the
#: code from the redirect's ``Location`` header and never follows it.
REDIRECT_URI = f"http://{HOST}/callback"
#: Every scope the provider knows; asked for so that no claim set by a test is dropped
#: (the provider releases ``email``, ``name`` and the like only for their scope).
REQUESTED_SCOPES = "openid profile email address phone"
#: The Flask endpoint of the provider's JWKS view (blueprint "oidc-provider-mock").
JWKS_ENDPOINT = "oidc-provider-mock.jwks"


class OIDCProviderError(RuntimeError):
    """The provider answered a step of the flow with something other than success."""


def import_mock() -> ModuleType:
    """Import oidc-provider-mock (``ImportError`` if it is not installed).

    Importing it warns twice, from Authlib: "authlib.jose module is deprecated" (the
    mock's ``from authlib import jose``) and "The httpx module is deprecated; please use
    httpx2" (its demo relying-party pages import Authlib's httpx client). Both are
    about the dependency's own imports, not about anything these tests check, so they
    are ignored here, for this import only. ``authlib.deprecate`` is imported first
    because it installs an "always" filter for Authlib's warnings when first imported,
    which would otherwise win over these; the ``catch_warnings`` block then drops it.
    """
    with warnings.catch_warnings():
        import authlib.deprecate  # noqa: F401  (see the docstring)

        warnings.filterwarnings(
            "ignore", message=r"authlib\.jose module is deprecated", category=DeprecationWarning
        )
        warnings.filterwarnings(
            "ignore", message=r"The httpx module is deprecated", category=DeprecationWarning
        )
        import oidc_provider_mock
        import oidc_provider_mock._app

    return oidc_provider_mock


def _new_key() -> RSAKey:
    from joserfc.jwk import RSAKey

    # kid: the key's RFC 7638 thumbprint, as the provider names its own key.
    return RSAKey.generate_key(2048, private=True, auto_kid=True)


class _KeyRing:
    """The provider's signing key and the keys its JWKS publishes."""

    def __init__(self, *, publish_alg: bool) -> None:
        self._lock = threading.Lock()
        self._publish_alg = publish_alg
        self.current = _new_key()
        self.published: list[RSAKey] = [self.current]

    def rotate(self, *, keep_previous: bool) -> RSAKey:
        key = _new_key()
        with self._lock:
            self.published = [key, *self.published] if keep_previous else [key]
            self.current = key
        return key

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            keys = list(self.published)
        extra = {"use": "sig", "alg": ALGORITHM} if self._publish_alg else {"use": "sig"}
        return {"keys": [{**key.as_dict(private=False), **extra} for key in keys]}


def _build_app(mock: ModuleType, ring: _KeyRing, token_max_age: timedelta) -> Any:
    """The provider's Flask app, signing with ``ring`` (see the module's docstring)."""
    import flask
    from joserfc.jwk import KeySet

    app_module = mock._app
    base = app_module.OpenIDCode
    max_age = int(token_max_age.total_seconds())

    class RingOpenIDCode(base):  # type: ignore[misc, valid-type]
        # Authlib >= 1.7 reads these in place of the deprecated get_jwt_config, as in
        # oidc-provider-mock 0.4; each of the four stops a call to get_jwt_config.
        def resolve_client_private_key(self, client: object) -> KeySet:
            # One key in a key set: joserfc writes its kid into the header.
            return KeySet([ring.current])

        def get_client_algorithm(self, client: object) -> str:
            return ALGORITHM

        def get_encode_header(self, client: object) -> dict[str, str]:
            return {"alg": ALGORITHM}

        def get_client_claims(self, client: object) -> dict[str, object]:
            return {
                "iss": flask.request.host_url.rstrip("/"),
                "exp": int(time.time()) + max_age,
            }

    # The blueprint builds its OpenIDCode when it is registered, in app(); the class is
    # swapped for that call only.
    app_module.OpenIDCode = RingOpenIDCode
    try:
        app = mock.app(access_token_max_age=token_max_age)
    finally:
        app_module.OpenIDCode = base
    if JWKS_ENDPOINT not in app.view_functions:
        raise RuntimeError(f"{PACKAGE} has no {JWKS_ENDPOINT!r} view; its layout changed")
    app.view_functions[JWKS_ENDPOINT] = lambda: flask.jsonify(ring.jwks())
    return app


def _server_class() -> type[ThreadedWSGIServer]:
    from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass

    class Server(ThreadedWSGIServer):
        """Keeps its client connections, so that stopping it also drops the kept-alive ones."""

        def __init__(self, host: str, port: int, app: Any) -> None:
            self.connections: set[socket.socket] = set()
            self.connections_lock = threading.Lock()
            super().__init__(host, port, app, handler=QuietHandler)

        def process_request(self, request: Any, client_address: Any) -> None:
            with self.connections_lock:
                self.connections.add(request)
            super().process_request(request, client_address)

        def shutdown_request(self, request: Any) -> None:
            with self.connections_lock:
                self.connections.discard(request)
            super().shutdown_request(request)

        def drop_connections(self) -> None:
            with self.connections_lock:
                open_now = list(self.connections)
            for connection in open_now:
                with suppress(OSError):  # already closed by its client
                    connection.shutdown(socket.SHUT_RDWR)

    return Server


class OIDCProvider:
    """One oidc-provider-mock server on 127.0.0.1, with a port it keeps across restarts.

    :param token_max_age: lifetime of the ID tokens it issues (their ``exp``).
    :param publish_alg: whether its JWKS entries carry ``"alg": "RS256"`` (most
        providers' do; Azure AD's, for one, do not). ``"use": "sig"`` is always there.
    """

    def __init__(
        self, *, token_max_age: timedelta = timedelta(hours=1), publish_alg: bool = True
    ) -> None:
        self._mock = import_mock()
        self._ring = _KeyRing(publish_alg=publish_alg)
        self._app = _build_app(self._mock, self._ring, token_max_age)
        self._server_class = _server_class()
        self._server: ThreadedWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- where it is ---------------------------------------------------------------

    @property
    def issuer(self) -> str:
        """``http://127.0.0.1:PORT``: the ``iss`` of its tokens and of its discovery document."""
        return f"http://{HOST}:{self.port}"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/jwks"

    @property
    def running(self) -> bool:
        return self._server is not None

    # -- its current key ---------------------------------------------------------

    @property
    def kid(self) -> str:
        """The ``kid`` of the key it signs with now."""
        kid = self._ring.current.kid
        assert kid is not None
        return kid

    @property
    def public_key_pem(self) -> str:
        """The public half of the key it signs with now, as a PEM ``PUBLIC KEY``."""
        return self._ring.current.as_pem(private=False).decode("ascii")

    @property
    def public_jwk(self) -> dict[str, Any]:
        """The current key as its JWKS entry."""
        return next(entry for entry in self.jwks()["keys"] if entry["kid"] == self.kid)

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """What ``/jwks`` serves now (read in-process: works while it is stopped too)."""
        return self._ring.jwks()

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Serve, on the port it had before if it ran before (else on a free port)."""
        if self._server is not None:
            return
        try:
            server = self._server_class(HOST, self.port, self._app)
        except SystemExit as exc:  # Werkzeug prints the cause and exits when bind fails.
            raise OSError(f"the OIDC provider could not bind {HOST}:{self.port}") from exc
        self.port = server.server_port
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"oidc-provider-{self.port}",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread

    def stop(self) -> None:
        """Stop serving: new connections are refused and open ones are cut.

        The provider keeps its keys and users; :meth:`start` brings it back as it was.
        """
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.drop_connections()  # type: ignore[attr-defined]
        server.server_close()
        thread.join(timeout=5)

    # -- keys ---------------------------------------------------------------------

    def rotate_keys(self, *, keep_previous: bool = False) -> str:
        """Sign with a new RSA key from now on and publish it; return its ``kid``.

        By default the JWKS then holds the new key alone, as oidc-provider-mock does
        with its one key. With ``keep_previous=True`` it keeps publishing the keys it
        published before too (a provider in the overlap of a key rollover).
        """
        kid = self._ring.rotate(keep_previous=keep_previous).kid
        assert kid is not None
        return kid

    # -- tokens ---------------------------------------------------------------------

    def token(
        self,
        sub: str = "alice",
        *,
        audience: str = DEFAULT_AUDIENCE,
        scopes: Sequence[str] | None = None,
        claims: Mapping[str, object] | None = None,
    ) -> str:
        """A fresh ID token for ``sub``, from the authorization-code flow.

        :param audience: the client id the flow runs as; the token's ``aud`` is
            ``[audience]`` (a list, as the provider writes it).
        :param scopes: written into the ``scope`` claim, space-separated
            (``["read", "write"]`` -> ``"read write"``). ``None``: no ``scope`` claim.
        :param claims: further claims of the user, JSON values, nested ones too
            (``{"permissions": [...]}``, ``{"realm_access": {"roles": [...]}}``). They
            are written after the provider's own claims, so ``iss``, ``aud``, ``exp``,
            ``iat``, ``nbf`` given here replace the provider's (a token that is expired,
            or of another issuer or audience, yet signed by this provider's key). ``sub``
            cannot be replaced this way.
        """
        return str(
            self.token_response(sub, audience=audience, scopes=scopes, claims=claims)["id_token"]
        )

    def token_response(
        self,
        sub: str = "alice",
        *,
        audience: str = DEFAULT_AUDIENCE,
        scopes: Sequence[str] | None = None,
        claims: Mapping[str, object] | None = None,
    ) -> dict[str, Any]:
        """The token endpoint's whole answer: ``id_token`` (the JWT), ``access_token`` and
        ``refresh_token`` (opaque strings, not JWTs), ``expires_in``, ``scope``,
        ``token_type``. Parameters as for :meth:`token`.
        """
        user_claims: dict[str, object] = dict(claims or {})
        if scopes is not None:
            user_claims["scope"] = " ".join(scopes)
        state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        authorize = {
            "client_id": audience,
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "scope": REQUESTED_SCOPES,
            "state": state,
            "nonce": nonce,
        }
        with httpx.Client(base_url=self.issuer, timeout=10.0) as client:
            # The provider's user directory: the claims the ID token will carry. They
            # replace what this sub had, so no claim of an earlier call lingers.
            _expect(client.put(f"/users/{quote(sub, safe='')}", json=user_claims), 204)
            # The authorization endpoint: the login form, then the user's choice of sub.
            _expect(client.get("/oauth2/authorize", params=authorize), 200)
            redirect = _expect(
                client.post("/oauth2/authorize", params=authorize, data={"sub": sub}), 302
            )
            query = parse_qs(urlsplit(redirect.headers["location"]).query)
            if query.get("state") != [state] or "code" not in query:
                raise OIDCProviderError(f"unexpected redirect: {redirect.headers['location']}")
            # The token endpoint, as a confidential client (client_secret_basic). The
            # client is not registered: the provider takes any id and secret.
            answer = _expect(
                client.post(
                    "/oauth2/token",
                    data={
                        "grant_type": "authorization_code",
                        "code": query["code"][0],
                        "redirect_uri": REDIRECT_URI,
                    },
                    auth=(audience, "authx-test-client-secret"),
                ),
                200,
            ).json()
        if "id_token" not in answer:
            raise OIDCProviderError(f"no id_token in the token response: {answer}")
        return dict(answer)


def _expect(response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        raise OIDCProviderError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}, not {status}: {response.text[:500]}"
        )
    return response


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forge_hs256(
    payload: Mapping[str, object],
    secret: str | bytes,
    *,
    headers: Mapping[str, object] | None = None,
) -> str:
    """An HS256 JWT signed with ``secret`` as the HMAC key, by hand.

    For the key-confusion case, ``forge_hs256(claims, provider.public_key_pem,
    headers={"kid": provider.kid})``: PyJWT itself refuses a PEM public key as an
    HMAC secret (``InvalidKeyError``), so it cannot make this token.
    """
    header = {"alg": "HS256", "typ": "JWT", **(headers or {})}
    key = secret.encode() if isinstance(secret, str) else secret
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, payload)
    )
    signature = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


ProviderFactory = Callable[..., OIDCProvider]
