"""``create_app`` for uvicorn: the ``JWT_*`` settings come from the environment."""

from __future__ import annotations

from tests.testing.app import create_app

app, auth = create_app()
