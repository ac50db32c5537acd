"""The demo served by ``make run``: the seed's complete example plus a page to try it.

Open http://127.0.0.1:8000/, log in as test/test, and the page opens the
WebSocket with ``?token=``. uvicorn's log shows ``token=[redacted]``.
"""

from __future__ import annotations

from fastapi.responses import HTMLResponse

from authx import RedactTokensFilter
from examples.seed_complete import app, auth

__all__ = ["app", "auth"]

# AuthX installs this by itself (JWT_REDACT_SERVER_LOGS); shown here as an app would.
RedactTokensFilter.install(params=[auth.config.JWT_QUERY_STRING_NAME])

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>AuthX WebSocket demo</title>
<style>
body { font: 15px system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; }
input, button { font: inherit; margin: .2rem; }
#log { background: #f4f4f4; padding: .5rem; min-height: 10rem; white-space: pre-wrap; }
</style></head>
<body>
<h1>AuthX WebSocket demo</h1>
<form id="login">
  <input id="username" value="test" aria-label="username">
  <input id="password" value="test" type="password" aria-label="password">
  <button>Log in and connect</button>
  <button type="button" id="bad">Connect with a bad token</button>
</form>
<form id="send"><input id="text" placeholder="message" aria-label="message">
  <button>Send</button></form>
<div id="log" role="log"></div>
<script>
const log = (line) => {
  document.getElementById("log").textContent += line + "\\n";
};
let ws = null;
function connect(token) {
  if (ws) ws.close();
  const url = new URL("/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("token", token);
  ws = new WebSocket(url);
  ws.onopen = () => log("open");
  ws.onmessage = (e) => log("received " + e.data);
  ws.onclose = (e) => log("closed: code " + e.code + (e.reason ? " (" + e.reason + ")" : ""));
}
document.getElementById("login").onsubmit = async (e) => {
  e.preventDefault();
  const r = await fetch("/login", {method: "POST",
    headers: {"content-type": "application/json"},
    body: JSON.stringify({username: document.getElementById("username").value,
                          password: document.getElementById("password").value})});
  if (!r.ok) { log("login failed: " + r.status); return; }
  connect((await r.json()).access_token);
};
document.getElementById("bad").onclick = () => connect("not-a-token");
document.getElementById("send").onsubmit = (e) => {
  e.preventDefault();
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(document.getElementById("text").value);
};
</script>
</body>
</html>
"""


@app.get("/", response_class=HTMLResponse, include_in_schema=False)
def index() -> str:
    """A page that logs in and opens the WebSocket with the query parameter."""
    return PAGE
