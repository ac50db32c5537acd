"""The seed's "Handling connection rejection" example."""

from fastapi import WebSocket

from examples._seed_app import app, auth

from authx.exceptions import AuthXException


@app.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket):
    try:
        payload = await auth._ws_auth_required(websocket)
    except AuthXException:
        await websocket.close(code=4001, reason="Authentication failed")
        return
    await websocket.accept()
    await websocket.send_json({"user": payload.sub})
