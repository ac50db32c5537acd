"""The close-code table as a browser sees it: `CloseEvent.code` and `.reason` in Chromium.

In ``"close"`` mode every row a page can meet arrives as the code and the reason
token, at the handshake and on a live connection. In ``"deny"`` mode a refused
handshake is an HTTP response, which the `WebSocket` API does not expose: the page
gets ``error`` then code 1006 with no reason, whatever the failure. Hence the
README's advice: browser clients use ``"close"`` mode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from authx import AuthX, AuthXConfig
from tests.conftest import SECRET, LiveServer, free_port

APP = "tests.apps.admission_app:app"
issuer: AuthX[Any] = AuthX(AuthXConfig(JWT_SECRET_KEY=SECRET))

#: Opens a WebSocket and resolves with what the page saw once it closes.
#: ``then`` says what the page does with the first message: "close" it (code 1000),
#: POST to a same-origin URL ("post:/revoke-subject?sub=..."), or "wait" for the server.
OPEN_SOCKET = """
async ({url, then, timeout}) => new Promise((resolve) => {
  const out = {opened: false, errored: false, messages: [], code: null, reason: null,
               wasClean: null, timedOut: false};
  const ws = new WebSocket(url);
  const timer = setTimeout(() => { out.timedOut = true; ws.close(); resolve(out); }, timeout);
  ws.onopen = () => { out.opened = true; };
  ws.onerror = () => { out.errored = true; };
  ws.onmessage = (event) => {
    out.messages.push(JSON.parse(event.data));
    if (out.messages.length > 1) return;
    if (then === "close") ws.close(1000);
    else if (then.startsWith("post:")) fetch(then.slice(5), {method: "POST"});
  };
  ws.onclose = (event) => {
    clearTimeout(timer);
    Object.assign(out, {code: event.code, reason: event.reason, wasClean: event.wasClean});
    resolve(out);
  };
})
"""


def token(sub: str = "alice", seconds: float = 60, **kwargs: Any) -> str:
    return issuer.create_access_token(uid=sub, expiry=timedelta(seconds=seconds), **kwargs)


def serve(factory: Any, case: str, mode: str = "close", **env: str) -> LiveServer:
    """A server of its own for ``case`` (AuthX ignores ``AUTHX_TEST_CASE``)."""
    server: LiveServer = factory(
        APP, JWT_SECRET_KEY=SECRET, JWT_WS_REJECTION=mode, AUTHX_TEST_CASE=case, **env
    )
    return server


@pytest.fixture
def page(context: Any) -> Iterator[Any]:
    page = context.new_page()
    yield page
    page.close()


def connect(
    page: Any, server: LiveServer, path: str, then: str = "wait", timeout: int = 5000
) -> dict[str, Any]:
    """Load a page of ``server`` (its 404 is enough: same origin) and open ``path``."""
    if not page.url.startswith(server.http + "/"):
        page.goto(server.http + "/")
    args = {"url": server.ws + path, "then": then, "timeout": timeout}
    result: dict[str, Any] = page.evaluate(OPEN_SOCKET, args)
    assert not result["timedOut"], result
    return result


def closed_with(result: dict[str, Any], code: int, reason: str) -> None:
    assert (result["code"], result["reason"]) == (code, reason), result
    assert result["wasClean"], result  # a close frame arrived: the page can trust the code


# Refused at the handshake (close mode: accepted, then closed) -----------------


# Paths built when the test runs: a token minted at collection could expire first.
REFUSALS: dict[str, tuple[Callable[[], str], int]] = {
    "invalid_token": (lambda: "/ws?token=not.a.token", 4001),
    "token_expired": (lambda: f"/ws?token={token(seconds=-30)}", 4002),
    "insufficient_scope": (lambda: f"/admin?token={token(scopes=['read'])}", 4003),
}


@pytest.mark.parametrize("reason", list(REFUSALS))
def test_handshake_refusal_shows_code_and_reason(
    page: Any, live_server_factory: Any, reason: str
) -> None:
    server = serve(live_server_factory, "browser-close")
    path, code = REFUSALS[reason]
    result = connect(page, server, path())
    # The socket was accepted so that the close can carry the code: "open" fires first.
    assert result["opened"], result
    closed_with(result, code, reason)
    assert not result["messages"]
    server.assert_log_clean(wait=0)


def test_revoked_token(page: Any, live_server_factory: Any) -> None:
    server = serve(live_server_factory, "browser-revoked-token")
    revoked = token("rex")
    page.goto(server.http + "/")
    status = page.evaluate(
        "async (t) => (await fetch('/revoke-token?token=' + t, {method: 'POST'})).status", revoked
    )
    assert status == 200
    closed_with(connect(page, server, f"/ws?token={revoked}"), 4004, "token_revoked")


# Closed while open (deny mode closes the same way: tests/websocket/test_close_codes.py)


def test_live_expiry(page: Any, live_server_factory: Any) -> None:
    server = serve(live_server_factory, "browser-live-expiry")
    result = connect(page, server, f"/ws?token={token('eve', seconds=1.5)}")
    assert result["opened"], result
    assert result["messages"] == [{"user": "eve"}], result
    closed_with(result, 4002, "token_expired")


def test_live_revocation(page: Any, live_server_factory: Any) -> None:
    server = serve(live_server_factory, "browser-live-revocation")
    result = connect(
        page, server, f"/ws?token={token('rita')}", then="post:/revoke-subject?sub=rita"
    )
    assert result["messages"] == [{"user": "rita"}], result
    closed_with(result, 4004, "token_revoked")


# Admission and availability ---------------------------------------------------


def test_rate_limited(page: Any, live_server_factory: Any) -> None:
    limits = {"JWT_WS_RATE_LIMIT": "0.5", "JWT_WS_RATE_BURST": "1", "JWT_WS_REFUSAL_DELAY": "0"}
    server = serve(live_server_factory, "browser-rate-limited", **limits)
    first = connect(page, server, f"/ws?token={token()}", then="close")
    assert first["messages"] == [{"user": "alice"}], first
    assert first["code"] == 1000  # closed by the page itself
    closed_with(connect(page, server, f"/ws?token={token()}"), 4029, "rate_limited; retry_after=2")


def test_auth_timeout(page: Any, live_server_factory: Any) -> None:
    server = serve(
        live_server_factory,
        "browser-auth-timeout",
        JWT_WS_TOKEN_LOCATION='["message"]',
        JWT_WS_AUTH_MESSAGE_TIMEOUT="0.3",
    )
    result = connect(page, server, "/ws")  # the page never sends its token
    assert result["opened"], result
    closed_with(result, 4008, "auth_timeout")


def test_store_unavailable(page: Any, live_server_factory: Any) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    server = serve(live_server_factory, "browser-store-unavailable", JWT_STORE_URL=dead)
    closed_with(connect(page, server, f"/ws?token={token()}"), 1013, "store_unavailable")


# The documented limitation of deny mode -----------------------------------------


def test_deny_mode_hides_the_reason_from_a_browser(page: Any, live_server_factory: Any) -> None:
    server = serve(live_server_factory, "browser-deny", mode="deny")
    result = connect(page, server, f"/ws?token={token(seconds=-30)}")
    # The server answered 401 with {"reason": "token_expired"}; the page sees none of it.
    assert result["errored"], result
    assert not result["opened"], result
    assert (result["code"], result["reason"], result["wasClean"]) == (1006, "", False), result
    assert '"WebSocket /ws?token=[redacted]" 401' in server.assert_log_clean(wait=0.2)
