"""An app offering every WebSocket transport, for Python-client and browser tests."""

from __future__ import annotations

from fastapi import FastAPI, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from authx import AuthX, AuthXConfig, TokenPayload

app = FastAPI()
# JWT_WS_TOKEN_LOCATION, JWT_WS_ALLOWED_ORIGINS, JWT_WS_REJECTION, ... come from the environment.
auth = AuthX(config=AuthXConfig())
auth.handle_errors(app)


class Login(BaseModel):
    username: str
    scopes: list[str] | None = None


@app.post("/login")
def login(data: Login, response: Response) -> dict[str, str]:
    token = auth.create_access_token(uid=data.username, scopes=data.scopes)
    auth.set_access_cookies(token, response)
    return {"access_token": token}


@app.post("/ws-ticket")
async def ws_ticket(ticket: str = auth.WS_TICKET) -> dict[str, str]:
    return {"ticket": ticket}


@app.post("/test/allow-origin")
def allow_origin(origin: str) -> dict[str, list[str]]:
    """Tests learn their servers' ports only after start-up."""
    auth.config.JWT_WS_ALLOWED_ORIGINS.append(origin)
    return {"allowed": auth.config.JWT_WS_ALLOWED_ORIGINS}


@app.websocket("/ws")
async def echo(websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED) -> None:
    await websocket.accept()
    await websocket.send_json({"user": payload.sub, "scopes": payload.scopes})
    try:
        while True:
            await websocket.send_json({"echo": await websocket.receive_text()})
    except WebSocketDisconnect:
        pass


@app.websocket("/ws/chat")
async def chat(websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED) -> None:
    """Accepts with the application protocol the client asked for."""
    await websocket.accept(subprotocol="chat.v1")
    await websocket.send_json({"user": payload.sub})


@app.websocket("/ws/admin")
async def admin(
    websocket: WebSocket, payload: TokenPayload = auth.ws_scopes_required("admin")
) -> None:
    await websocket.accept()
    await websocket.send_json({"user": payload.sub, "admin": True})


@app.get("/", response_class=HTMLResponse)
def page() -> str:
    return "<!doctype html><title>transports</title><p>AuthX transports test page</p>"
