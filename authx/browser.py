"""The browser client: a dependency-free ES module, with TypeScript declarations, that an
app serves with one line and imports with ``<script type="module">``::

    from authx.browser import client_files

    app.mount("/authx", client_files())  # /authx/authx.js and /authx/authx.d.ts

The module connects, refreshes in-band before expiry, and follows the close-code
table (:mod:`authx.close_codes`): see the README's "Clients that stay connected".
"""

from __future__ import annotations

from pathlib import Path

from starlette.staticfiles import StaticFiles

__all__ = ["STATIC_DIR", "client_files"]

#: Where the module and its declarations are, for apps that serve files their own way.
STATIC_DIR = Path(__file__).parent / "static"


def client_files() -> StaticFiles:
    """A Starlette app serving ``authx.js`` and ``authx.d.ts`` (mount it anywhere)."""
    return StaticFiles(directory=STATIC_DIR)
