"""The handshake benchmark's app for the PyPI ``authx`` package (the competitor).

Copied into a directory of its own and served by the separate virtual environment's
uvicorn, so that ``import authx`` is the installed package and never this project.
The same two routes as ``bench/_ws_app.py``, written against the shared AuthX API.
"""

from fastapi import FastAPI, WebSocket

from authx import AuthX, AuthXConfig, TokenPayload

SECRET = "bench-secret-key-that-is-long-enough-for-hs256"

app = FastAPI()
auth = AuthX(config=AuthXConfig(JWT_SECRET_KEY=SECRET, JWT_TOKEN_LOCATION=["headers", "query"]))
auth.handle_errors(app)


@app.websocket("/ws")
async def authenticated(
    websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED
) -> None:
    await websocket.accept()
    await websocket.close()


@app.websocket("/ws/open")
async def unauthenticated(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.close()


@app.get("/token")
def token() -> dict[str, str]:
    return {"token": auth.create_access_token(uid="bench-user", scopes=["chat:read"])}
