"""The browser module (`/authx/authx.js`) in headless Chromium: a page that stays connected.

Every test loads a same-origin page of ``tests/apps/client_app.py``, imports the module
and drives one or more clients; what the page saw is kept in ``window.log`` (state
changes, application messages, auth errors, tokens), what the network carried is read
with Playwright's ``websocket`` and ``request`` events.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError

from tests.conftest import SECRET, LiveServer, free_port

APP = "tests.apps.client_app:app"
ENV = {
    "JWT_SECRET_KEY": SECRET,
    "JWT_WS_REJECTION": "close",
    "JWT_WS_TOKEN_LOCATION": '["ticket", "subprotocol", "query", "message"]',
    "JWT_TOKEN_LOCATION": '["headers", "cookies"]',
    "JWT_COOKIE_SECURE": "false",
    "JWT_ACCESS_TOKEN_EXPIRES": "3",
    "JWT_WS_EXPIRY_WARNING": "1",
    "STREAM_INTERVAL": "0.05",
}

#: Logs in as ``sub`` (the refresh cookie and its CSRF cookie are set), then starts one
#: client. ``getToken``: "cookie" is the module's refreshWithCookie(), "login" returns the
#: login's access token. Calls ``send`` for every item of ``sendWhileReconnecting`` the
#: first time the client is reconnecting, and records what send did.
START = """
async ({url, sub, getToken, options, sendWhileReconnecting}) => {
  const {connect, refreshWithCookie} = await import("/authx/authx.js");
  const login = await fetch("/login?sub=" + sub, {method: "POST", credentials: "include"});
  const loginToken = (await login.json()).access_token;
  const log = window.log = {states: [], messages: [], authErrors: [], tokens: [loginToken],
                            sent: null, t0: performance.now()};
  const now = () => performance.now() - log.t0;
  const source = getToken === "cookie" ? refreshWithCookie() : async () => loginToken;
  window.client = connect(url, {...options,
    getToken: async () => { const token = await source(); log.tokens.push(token); return token; },
    onMessage: (data) => log.messages.push({t: now(), ...JSON.parse(data)}),
    onAuthError: (error) => log.authErrors.push(error),
    onStateChange: (state, info) => {
      log.states.push({state, t: now(), ...info});
      if (state !== "reconnecting" || !sendWhileReconnecting || log.sent) return;
      log.sent = sendWhileReconnecting.map((data) => {
        try { window.client.send(data); return "ok"; } catch (error) { return error.message; }
      });
    },
  });
}
"""

POST = "async (path) => (await fetch(path, {method: 'POST', credentials: 'include'})).status"


def serve(factory: Any, case: str, port: int = 0, **env: str) -> LiveServer:
    server: LiveServer = factory(APP, port=port, **{**ENV, "AUTHX_TEST_CASE": case, **env})
    return server


def serve_store(factory: Any) -> LiveServer:
    """The server of the outage tests: tokens outlive the outage (getToken is the login's)."""
    return serve(factory, "client-module-store", JWT_ACCESS_TOKEN_EXPIRES="60")


@pytest.fixture
def page(context: Any) -> Iterator[Any]:
    page = context.new_page()
    yield page
    page.close()


class Network:
    """The WebSockets a page opened (their URLs and received frames) and its HTTP requests."""

    def __init__(self, page: Any) -> None:
        self.sockets: list[Any] = []
        self.frames: list[list[str]] = []
        self.requests: list[Any] = []
        page.on("websocket", self._socket)
        page.on("request", lambda request: self.requests.append(request))

    def _socket(self, socket: Any) -> None:
        frames: list[str] = []
        self.sockets.append(socket)
        self.frames.append(frames)
        socket.on("framereceived", lambda payload: frames.append(payload))

    def in_band(self, kind: str) -> list[dict[str, Any]]:
        """The ``authx.<kind>`` messages the server sent, over all sockets."""
        found = [json.loads(f) for frames in self.frames for f in frames if kind in f]
        return [m for m in found if m.get("type") == f"authx.{kind}"]


def start(page: Any, server: LiveServer, sub: str, source: str = "cookie", **options: Any) -> None:
    if not page.url.startswith(server.http + "/"):
        page.goto(server.http + "/")
    send = options.pop("send_while_reconnecting", None)
    args = {
        "url": server.ws + "/stream",
        "sub": sub,
        "getToken": source,
        "options": options,
        "sendWhileReconnecting": send,
    }
    page.evaluate(START, args)


def log(page: Any) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate("window.log")
    return result


def states(page: Any) -> list[str]:
    return [s["state"] for s in log(page)["states"]]


def numbers(messages: list[dict[str, Any]]) -> list[int]:
    return [m["n"] for m in messages if "n" in m]


# a. In-band refresh ----------------------------------------------------------------


def test_stays_connected_across_three_expiries(page: Any, live_server_factory: Any) -> None:
    server = serve(live_server_factory, "client-module")
    network = Network(page)
    start(page, server, "alice")
    page.wait_for_timeout(10_500)  # 3.5 lifetimes of a 3 s token
    seen = log(page)
    page.evaluate("window.client.close()")

    # One socket, opened once, never closed: the module never reconnected.
    assert [s["state"] for s in seen["states"]] == ["connecting", "open"], seen["states"]
    assert len(network.sockets) == 1
    # The stream has no gap: every n from 0, in order, up to the end.
    assert seen["messages"][0]["user"] == "alice"
    ns = numbers(seen["messages"])
    assert ns == list(range(len(ns)))
    assert len(ns) > 100, len(ns)
    assert seen["messages"][-1]["t"] > 10_000
    # The server took at least three in-band refreshes, each moving the deadline.
    refreshed = [m["exp"] for m in network.in_band("refreshed")]
    assert len(refreshed) >= 3, refreshed
    assert refreshed == sorted(set(refreshed))
    assert len(network.in_band("expiring")) >= 3
    # ... none of which reached the app.
    assert not [m for m in seen["messages"] if "type" in m]
    # Each new token came from POST /refresh with the CSRF cookie's value in the header.
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrf_refresh_token")
    refreshes = [r for r in network.requests if r.url.endswith("/refresh")]
    assert len(refreshes) >= 4  # the first connection, then every refresh
    assert all(r.method == "POST" and r.headers["x-csrf-token"] == csrf for r in refreshes)
    assert len(seen["tokens"]) == len(refreshes) + 1  # the login's, then one per refresh
    server.assert_log_clean(*seen["tokens"])


# b. Revocation stops ------------------------------------------------------------------


def test_revocation_stops_for_good(page: Any, live_server_factory: Any) -> None:
    server = serve(live_server_factory, "client-module")
    network = Network(page)
    start(page, server, "bob")
    page.wait_for_function("window.log.messages.length >= 3")
    assert page.evaluate(POST, "/revoke-subject?sub=bob") == 200
    page.wait_for_function("window.client.state === 'closed'", timeout=3000)
    page.wait_for_timeout(2500)  # default backoff: a reconnect would come within 0.5 s
    seen = log(page)

    assert seen["authErrors"] == [{"code": 4004, "reason": "token_revoked", "action": "stop"}]
    assert [s["state"] for s in seen["states"]] == ["connecting", "open", "closed"]
    assert seen["states"][-1]["code"] == 4004
    assert len(network.sockets) == 1
    assert page.evaluate("window.client.socket") is None


# c. Store outage: backoff, then back by itself ---------------------------------------------


def test_store_outage_backs_off_and_recovers(page: Any, live_server_factory: Any) -> None:
    server = serve_store(live_server_factory)
    network = Network(page)
    page.goto(server.http + "/")
    assert page.evaluate(POST, "/store?up=0") == 200
    try:
        start(page, server, "carol", source="login", backoff={"initial": 0.2, "max": 2})
        page.wait_for_function(
            "window.log.states.filter((s) => s.state === 'reconnecting').length >= 8",
            timeout=15_000,
        )
    finally:
        assert page.evaluate(POST, "/store?up=1") == 200
    page.wait_for_function("window.log.messages.some((m) => m.n === 3)", timeout=4000)
    seen = log(page)

    retries = [s for s in seen["states"] if s["state"] == "reconnecting"]
    assert {(s["code"], s["reason"]) for s in retries} == {(1013, "store_unavailable")}
    attempts = [s["attempt"] for s in retries]
    assert attempts == list(range(1, len(retries) + 1))
    # Full jitter: each delay within [0, min(max, initial * 2 ** (attempt - 1))] ...
    bounds = [min(2.0, 0.2 * 2 ** (a - 1)) for a in attempts]
    assert all(0 <= s["delay"] <= b for s, b in zip(retries, bounds, strict=True)), retries
    # ... and the window grows: from attempt 4 (window 1.6 s) the chance that no delay
    # exceeds the first window (0.2 s) is under 1/80,000 with real randomness.
    assert max(s["delay"] for s in retries[3:]) > 0.2, retries
    # Each next attempt waited its delay: every refused socket opened (close mode) no sooner.
    opens = [s["t"] for s in seen["states"] if s["state"] == "open"]
    for retry, opened in zip(retries, opens[1:], strict=False):
        assert opened >= retry["t"] + retry["delay"] * 1000 - 5, (retry, opened)
    # Every attempt was one socket, and the last one is the open one, streaming.
    assert len(network.sockets) == len(retries) + 1
    assert page.evaluate("window.client.state") == "open"
    assert numbers(seen["messages"])[:4] == [0, 1, 2, 3]
    page.evaluate("window.client.close()")


# d. A reconnect storm is spread out ---------------------------------------------------------

CLIENTS = 200

#: Starts ``count`` clients on one page. Each client's URL has ``?c=<i>`` so that the
#: time of every WebSocket the module creates can be told apart by client.
STORM = """
async ({url, count}) => {
  const {connect} = await import("/authx/authx.js");
  const login = await fetch("/login?sub=storm", {method: "POST", credentials: "include"});
  const token = (await login.json()).access_token;
  const Native = window.WebSocket;
  const storm = window.storm = {created: [], clients: []};
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      storm.created.push({c: +new URL(args[0]).searchParams.get("c"), t: performance.now()});
    }
  };
  for (let c = 0; c < count; c++) {
    const entry = {messages: 0, states: []};
    entry.client = connect(`${url}?c=${c}`, {getToken: () => token, backoff: {initial: 1, max: 4},
      onMessage: () => { entry.messages += 1; },
      onStateChange: (state, info) => entry.states.push({state, t: performance.now(), ...info}),
    });
    storm.clients.push(entry);
  }
}
"""

ALL_OPEN = (
    "(least) => window.storm.clients.every((e) => e.client.state === 'open' && e.messages >= least)"
)


def test_reconnect_storm_is_spread_out(page: Any, live_server_factory: Any) -> None:
    server = serve(
        live_server_factory,
        "client-module-storm",
        port=free_port(),
        JWT_ACCESS_TOKEN_EXPIRES="300",
        STREAM_INTERVAL="60",
    )
    page.goto(server.http + "/")
    page.evaluate(STORM, {"url": server.ws + "/stream", "count": CLIENTS})
    page.wait_for_function(ALL_OPEN, arg=1, timeout=15_000)
    assert page.evaluate("window.storm.created.length") == CLIENTS  # one page held them all
    restart = page.evaluate("performance.now()")
    server.stop()
    server.start()  # the same port
    # Every client is back by itself: open, and streaming again ({"user"} and {"n": 0}).
    page.wait_for_function(ALL_OPEN, arg=3, timeout=15_000)
    created = page.evaluate("window.storm.created")
    closes = page.evaluate(
        "(t) => window.storm.clients.map((e) => e.states.find((s) => s.t > t))", restart
    )

    first: dict[int, float] = {}
    for socket in created:
        if socket["t"] > restart:
            first.setdefault(socket["c"], socket["t"])
    assert len(first) == CLIENTS
    assert all(s["state"] == "reconnecting" and s["attempt"] == 1 for s in closes), closes[:3]
    # The first attempt came at its scheduled time: the close, plus a delay in [0, 1 s].
    for c, close in enumerate(closes):
        assert 0 <= close["delay"] <= 1
        assert abs(first[c] - (close["t"] + close["delay"] * 1000)) < 100, (close, first[c])
    start_ms = min(c["t"] for c in closes)
    offsets = sorted(t - start_ms for t in first.values())
    buckets = Counter(int(offset // 100) for offset in offsets)
    histogram = "\n".join(
        f"{b * 100:5d}-{b * 100 + 99:4d} ms {n:3d} {'#' * n}" for b, n in sorted(buckets.items())
    )
    codes = Counter(f"{c['code']} {c['reason']}".strip() for c in closes)
    back = page.evaluate(
        "(t) => Math.max(...window.storm.clients.map((e) => e.states.at(-1).t)) - t", restart
    )
    print(  # noqa: T201
        f"\n{CLIENTS} clients, closes seen at the restart: {dict(codes)}; all open again "
        f"{back:.0f} ms after the restart began, after {len(created) - CLIENTS} attempts"
        f"\nfirst reconnect attempts:\n{histogram}"
    )
    assert offsets[-1] - offsets[0] >= 500, histogram  # half the 1 s jitter window at least
    assert max(buckets.values()) <= CLIENTS // 4, histogram
    page.evaluate("window.storm.clients.forEach((e) => e.client.close())")


# e. Ticket transport: no token in any URL -------------------------------------------------


def test_ticket_transport_keeps_tokens_out_of_urls(page: Any, live_server_factory: Any) -> None:
    server = serve(live_server_factory, "client-module")
    network = Network(page)
    start(page, server, "erin", ticketUrl="/ws-ticket")
    # The login's token, the first connection's, then two in-band refreshes.
    page.wait_for_function("window.log.tokens.length >= 4", timeout=8000)
    seen = log(page)
    page.evaluate("window.client.close()")

    assert states(page) == ["connecting", "open", "closed"]
    assert seen["messages"][0]["user"] == "erin"
    assert numbers(seen["messages"])[:5] == [0, 1, 2, 3, 4]
    assert [s.url.split("?")[0] for s in network.sockets] == [server.ws + "/stream"]
    assert "?ticket=" in network.sockets[0].url
    urls = [s.url for s in network.sockets] + [r.url for r in network.requests]
    for token in seen["tokens"]:
        assert not [url for url in urls if token in url]
    assert any(r.url.endswith("/ws-ticket") for r in network.requests)
    server.assert_log_clean(*seen["tokens"])


# f. close() and send() -------------------------------------------------------------------


def test_close_stops_for_good(page: Any, live_server_factory: Any) -> None:
    server = serve(live_server_factory, "client-module")
    network = Network(page)
    start(page, server, "frank")
    page.wait_for_function("window.log.messages.length >= 3")
    page.evaluate("window.client.close()")
    count = len(log(page)["messages"])
    page.wait_for_timeout(1500)

    assert states(page) == ["connecting", "open", "closed"]
    assert len(log(page)["messages"]) == count
    assert len(network.sockets) == 1
    assert page.evaluate("async () => (await (await fetch('/stats')).json()).connections") == 0
    with pytest.raises(PlaywrightError, match="the client is closed"):
        page.evaluate("window.client.send('late')")


def test_close_while_reconnecting_cancels_the_retry(page: Any, live_server_factory: Any) -> None:
    server = serve(live_server_factory, "client-module")
    page.goto(server.http + "/")
    network = Network(page)
    # Nothing listens on that port: every attempt fails (1006) and is retried.
    dead = f"ws://127.0.0.1:{free_port()}/stream"
    page.evaluate(
        START,
        {"url": dead, "sub": "gina", "getToken": "login", "options": {"backoff": {"initial": 0.3}}},
    )
    page.wait_for_function(
        "window.log.states.filter((s) => s.state === 'reconnecting').length >= 2"
    )
    page.evaluate("window.client.close()")
    attempts = len(network.sockets)
    page.wait_for_timeout(1500)  # the pending retry was due within 0.6 s

    assert states(page)[-1] == "closed"
    assert {s["code"] for s in log(page)["states"] if s["state"] == "reconnecting"} == {1006}
    assert len(network.sockets) == attempts


def test_send_queues_while_reconnecting(page: Any, live_server_factory: Any) -> None:
    server = serve_store(live_server_factory)
    page.goto(server.http + "/")
    assert page.evaluate(POST, "/store?up=0") == 200
    try:
        messages = [f"m{i}" for i in range(150)]
        start(
            page,
            server,
            "hana",
            source="login",
            backoff={"initial": 0.2, "max": 0.5},
            send_while_reconnecting=messages,
        )
        # Two more refused attempts: each opened (close mode) and got the queue sent,
        # and the module kept it because no app message came before the close.
        page.wait_for_function(
            "window.log.states.filter((s) => s.state === 'reconnecting').length >= 3"
        )
    finally:
        assert page.evaluate(POST, "/store?up=1") == 200
    page.wait_for_function("window.log.messages.filter((m) => m.echo).length >= 100", timeout=5000)
    page.wait_for_timeout(300)
    seen = log(page)
    page.evaluate("window.client.close()")

    assert seen["sent"] == ["ok"] * 150
    # Bounded at queueLimit 100: the oldest 50 dropped, the rest delivered once, in order.
    assert [m["echo"] for m in seen["messages"] if "echo" in m] == messages[50:]


def test_send_rejects_while_reconnecting_with_queue_reject(
    page: Any, live_server_factory: Any
) -> None:
    server = serve_store(live_server_factory)
    page.goto(server.http + "/")
    assert page.evaluate(POST, "/store?up=0") == 200
    try:
        start(
            page,
            server,
            "ivan",
            source="login",
            queue="reject",
            backoff={"initial": 0.2},
            send_while_reconnecting=["hello"],
        )
        page.wait_for_function("window.log.sent !== null")
    finally:
        assert page.evaluate(POST, "/store?up=1") == 200
    assert log(page)["sent"] == ["authx: not connected (reconnecting)"]
    page.wait_for_function("window.log.messages.some((m) => m.n === 1)", timeout=4000)
    page.evaluate("window.client.send('now')")
    page.wait_for_function("window.log.messages.some((m) => m.echo === 'now')")
    page.evaluate("window.client.close()")


def test_cookie_transport_stays_connected_and_refreshes(
    page: Any, live_server_factory: Any
) -> None:
    port = free_port()
    server = serve(
        live_server_factory,
        "client-module-cookie",
        port=port,
        JWT_WS_TOKEN_LOCATION='["cookies"]',
        JWT_WS_ALLOWED_ORIGINS=f'["http://127.0.0.1:{port}"]',
    )
    network = Network(page)
    start(page, server, "cora", transport="cookie")
    page.wait_for_function(
        "window.log.messages.some((m) => m.n === 60)", timeout=15_000
    )  # 3 s of stream: past the first token's expiry
    seen = log(page)
    page.evaluate("window.client.close()")
    assert [s["state"] for s in seen["states"]][:2] == ["connecting", "open"]
    assert "reconnecting" not in [s["state"] for s in seen["states"]]
    numbers = [m["n"] for m in seen["messages"] if "n" in m]
    assert numbers == list(range(len(numbers)))
    assert network.in_band("refreshed"), "the cookie client refreshed in-band"
    assert all("token=" not in socket.url for socket in network.sockets)
    server.assert_log_clean(*seen["tokens"])
