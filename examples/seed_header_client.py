"""The seed's "Authorization header" client (argument named as current `websockets` has it).

Run a server first (``uvicorn examples.seed_complete:app``) and pass a token:
``TOKEN=... python -m examples.seed_header_client``.
"""

import os
import asyncio
import websockets


async def main():
    token = os.environ.get("TOKEN", "eyJ...")
    headers = {"Authorization": f"Bearer {token}"}
    async with websockets.connect("ws://localhost:8000/ws", additional_headers=headers) as ws:
        print(await ws.recv())

asyncio.run(main())
