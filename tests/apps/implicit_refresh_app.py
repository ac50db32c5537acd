"""An app for the implicit-refresh test on the wire: a cookie login, a protected
route, the middleware installed as AuthX users write it; every setting from the
environment."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Response

from authx import AuthX, AuthXConfig, TokenPayload

app = FastAPI()
auth = AuthX(config=AuthXConfig())
auth.handle_errors(app)
app.middleware("http")(auth.implicit_refresh_middleware)


@app.post("/login")
def login(response: Response, seconds: float = 300) -> dict[str, bool]:
    token = auth.create_access_token(
        "alice", expiry=timedelta(seconds=seconds), scopes=["read"], data={"role": "admin"}
    )
    auth.set_access_cookies(token, response)
    return {"ok": True}


@app.get("/me")
def me(payload: TokenPayload = auth.ACCESS_REQUIRED) -> dict[str, Any]:
    return {"user": payload.sub, "jti": payload.jti, "scopes": payload.scopes}
