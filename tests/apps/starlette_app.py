"""Plain Starlette apps (no FastAPI) for tests/starlette.

``app``: AuthX's backend behind Starlette's ``AuthenticationMiddleware`` for the
whole app (``request.user``, ``@requires`` on HTTP and WebSocket routes), and
``WebSocketAuthMiddleware`` over the ``/live`` and ``/admin-live`` mounts only.
``ws_app``: ``WebSocketAuthMiddleware`` over a whole app, nothing else.
Settings (transports, rejection mode, ...) come from the environment.
"""

from __future__ import annotations

import contextlib

from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, Router, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from authx import AuthX, AuthXConfig
from authx.starlette import AuthXBackend, WebSocketAuthMiddleware

auth = AuthX(config=AuthXConfig())


def _who(connection: Request | WebSocket) -> dict[str, object]:
    user = connection.user
    return {
        "authenticated": user.is_authenticated,
        "user": user.display_name or None,
        "scopes": list(connection.auth.scopes),
    }


async def me(request: Request) -> JSONResponse:
    return JSONResponse(_who(request))


@requires("read")
async def read(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.user.identity})


@requires("admin:users", redirect="me")
async def admin(request: Request) -> JSONResponse:
    return JSONResponse({"admin": request.user.identity})


async def login(request: Request) -> JSONResponse:
    data = await request.json()
    token = auth.create_access_token(uid=data["username"], scopes=data.get("scopes"))
    response = JSONResponse({"access_token": token})
    auth.set_access_cookies(token, response)
    return response


async def ws_ticket(request: Request) -> JSONResponse:
    """A one-time WebSocket ticket for the request's access token (both apps)."""
    found = await auth.get_token_from_request(request)
    if found is None:
        return JSONResponse({"error": "no token"}, status_code=401)
    payload = auth.verify_token(found)
    origin = request.headers.get("origin")
    return JSONResponse(
        {"ticket": await auth.create_ws_ticket(payload, origin=origin, token=found.token)}
    )


async def revoke_subject(request: Request) -> JSONResponse:
    await auth.revoke_subject(request.query_params["sub"])
    return JSONResponse({"revoked": True})


async def plain(request: Request) -> JSONResponse:
    """HTTP passes WebSocketAuthMiddleware untouched."""
    return JSONResponse({"user_in_scope": "user" in request.scope})


async def stats(request: Request) -> JSONResponse:
    return JSONResponse({**auth.live_stats(), "active": len(auth.active_connections())})


@requires("read")
async def ws_requires(websocket: WebSocket) -> None:
    """The backend alone: Starlette's ``@requires`` on a WebSocket route."""
    await websocket.accept()
    await websocket.send_json(_who(websocket))
    await websocket.close()


async def ws_anonymous(websocket: WebSocket) -> None:
    """The backend alone, no requirement: anonymous connections are welcome."""
    await websocket.accept()
    await websocket.send_json(_who(websocket))
    await websocket.close()


async def echo(websocket: WebSocket) -> None:
    """Behind WebSocketAuthMiddleware: an ordinary Starlette endpoint."""
    await websocket.accept()
    result = await auth.authenticate_websocket(websocket)
    user = websocket.user
    await websocket.send_json(
        {
            **_who(websocket),
            "location": result.location,
            "same_session": result.session is user.session,
            "offered": websocket.scope.get("subprotocols"),
        }
    )
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            text = await websocket.receive_text()
            if text == "raise":
                raise RuntimeError("the endpoint failed")
            if text == "return":
                return
            await websocket.send_json(
                {
                    "echo": text,
                    "scopes": list(websocket.auth.scopes),
                    "exp": user.payload.expires_at,
                }
            )


async def chat(websocket: WebSocket) -> None:
    """Accepts with the application protocol it speaks."""
    await websocket.accept(subprotocol="chat.v1")
    await websocket.send_json({"user": websocket.user.identity})
    with contextlib.suppress(WebSocketDisconnect):
        await websocket.receive_text()


live = Router([WebSocketRoute("/echo", echo), WebSocketRoute("/chat", chat)])

app = Starlette(
    routes=[
        Route("/me", me, name="me"),
        Route("/read", read),
        Route("/admin", admin),
        Route("/login", login, methods=["POST"]),
        Route("/ws-ticket", ws_ticket, methods=["POST"]),
        Route("/revoke/subject", revoke_subject, methods=["POST"]),
        Route("/stats", stats),
        WebSocketRoute("/ws/requires", ws_requires),
        WebSocketRoute("/ws/anonymous", ws_anonymous),
        Mount("/live", app=WebSocketAuthMiddleware(live, auth=auth)),
        Mount("/admin-live", app=WebSocketAuthMiddleware(live, auth=auth, scopes=["admin"])),
    ],
    middleware=[
        Middleware(
            AuthenticationMiddleware, backend=AuthXBackend(auth), on_error=AuthXBackend.on_error
        )
    ],
)

ws_app = Starlette(
    routes=[
        WebSocketRoute("/echo", echo),
        Route("/plain", plain),
        Route("/ws-ticket", ws_ticket, methods=["POST"]),
        Route("/stats", stats),
        Route("/revoke/subject", revoke_subject, methods=["POST"]),
    ],
    middleware=[Middleware(WebSocketAuthMiddleware, auth=auth)],
)
