"""The seed's "With scopes" example."""

from fastapi import WebSocket

from authx.exceptions import AuthXException
from examples._seed_app import app, auth


@app.websocket("/ws/admin")
async def admin_ws(websocket: WebSocket):
    try:
        payload = await auth._ws_auth_required(websocket)
    except AuthXException:
        await websocket.close(code=4001)
        return

    if not payload.has_scopes("admin:*"):
        await websocket.close(code=4003, reason="Insufficient permissions")
        return

    await websocket.accept()
    await websocket.send_json({"admin": True, "user": payload.sub})
