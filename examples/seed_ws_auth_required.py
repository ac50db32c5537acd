"""The seed's "Using the WS_AUTH_REQUIRED property" example."""

from fastapi import WebSocket

from authx import TokenPayload
from examples._seed_app import app, auth


@app.websocket("/ws")
async def websocket_endpoint(
    websocket: WebSocket,
    payload: TokenPayload = auth.WS_AUTH_REQUIRED,
):
    await websocket.accept()
    await websocket.send_json({"user": payload.sub})
