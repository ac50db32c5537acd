"""Quick start: log in with a JSON body, then call an HTTP route and a WebSocket with the token.

Run it with `.venv/bin/uvicorn examples.quickstart:app` (see docs/quickstart.md).
"""

import hmac
import logging
import os

from fastapi import FastAPI, HTTPException, WebSocket, WebSocketDisconnect
from pydantic import BaseModel

from authx import AuthX, AuthXConfig, TokenPayload

# AuthX logs rejected tokens at INFO on the "authx" logger: show them beside uvicorn's lines.
logging.basicConfig(format="%(levelname)s:     %(name)s: %(message)s")
logging.getLogger("authx").setLevel(logging.INFO)

app = FastAPI()
secret = os.environ.get("JWT_SECRET_KEY", "change-me-to-32-bytes-or-more-please")
auth = AuthX(config=AuthXConfig(JWT_SECRET_KEY=secret))
auth.handle_errors(app)


class Credentials(BaseModel):
    username: str
    password: str


@app.post("/login")
def login(credentials: Credentials) -> dict[str, str]:
    # A real app checks a password hash from its user store.
    valid = credentials.username == "test" and hmac.compare_digest(credentials.password, "test")
    if not valid:
        raise HTTPException(401, detail="Invalid credentials")
    return {"access_token": auth.create_access_token(uid=credentials.username, scopes=["read"])}


@app.get("/me")
def me(payload: TokenPayload = auth.ACCESS_REQUIRED) -> dict[str, str | None]:
    return {"user": payload.sub}


@app.websocket("/ws")
async def chat(websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED) -> None:
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_json({"user": payload.sub, "echo": text})
    except WebSocketDisconnect:
        pass
