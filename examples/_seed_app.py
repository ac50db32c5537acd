"""The application the seed's shorter examples assume: the complete example's set-up."""

import os

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from authx import AuthX, AuthXConfig

app = FastAPI()

config = AuthXConfig(
    JWT_SECRET_KEY=os.environ.get("JWT_SECRET_KEY", "your-secret-key"),
    JWT_TOKEN_LOCATION=["headers"],
)
auth = AuthX(config=config)
auth.handle_errors(app)


class LoginRequest(BaseModel):
    username: str
    password: str
    scopes: list[str] | None = None


@app.post("/login")
def login(data: LoginRequest) -> dict[str, str]:
    """Get a token to use with WebSocket."""
    if data.username == "test" and data.password == "test":
        return {"access_token": auth.create_access_token(uid=data.username, scopes=data.scopes)}
    raise HTTPException(401, detail="Invalid credentials")
