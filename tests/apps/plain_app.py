"""An app that configures no logging at all, as most apps under plain uvicorn do."""

import os

from fastapi import FastAPI, WebSocket

from authx import AuthX, AuthXConfig, TokenPayload

app = FastAPI()
auth = AuthX(config=AuthXConfig(JWT_SECRET_KEY=os.environ["JWT_SECRET_KEY"]))
auth.handle_errors(app)


@app.post("/login")
def login() -> dict[str, str]:
    return {"access_token": auth.create_access_token(uid="alice")}


@app.get("/me")
def me(payload: TokenPayload = auth.ACCESS_REQUIRED) -> dict[str, str | None]:
    return {"user": payload.sub}


@app.websocket("/ws")
async def ws(websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED) -> None:
    await websocket.accept()
    await websocket.send_text(str(payload.sub))
