"""The seed's "With token blocklist" example, with the REVOKED_TOKENS set it assumes."""

from fastapi import WebSocket

from authx import TokenPayload
from examples._seed_app import app, auth

REVOKED_TOKENS: set[str] = set()


@app.post("/logout")
def logout(token: str) -> dict[str, bool]:
    """Revoke a token (the seed leaves filling REVOKED_TOKENS to the app)."""
    REVOKED_TOKENS.add(token)
    return {"revoked": True}


auth.set_token_blocklist(lambda token: token in REVOKED_TOKENS)


@app.websocket("/ws")
async def websocket_endpoint(
    websocket: WebSocket,
    payload: TokenPayload = auth.WS_AUTH_REQUIRED,
):
    await websocket.accept()
    # If the token is revoked, the connection never reaches here
