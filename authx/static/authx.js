/**
 * AuthX browser client: a WebSocket that stays connected.
 *
 * A dependency-free ES module (no build step). It authenticates with one of AuthX's
 * browser-safe transports, refreshes its token in-band before it expires (the socket
 * never drops), and follows the server's close-code table: refresh, retry with
 * backoff, or stop. Serve it with `app.mount("/authx", client_files())` and:
 *
 * @example
 * import {connect, refreshWithCookie} from "/authx/authx.js";
 *
 * // After POST /login set the refresh cookie and its CSRF cookie:
 * const client = connect(`wss://${location.host}/ws`, {
 *   getToken: refreshWithCookie("/refresh"),
 *   ticketUrl: "/ws-ticket",                      // transport "ticket": no token in any URL
 *   onMessage: (data) => console.log(JSON.parse(data)),
 *   onStateChange: (state, info) => console.log(state, info),
 *   onAuthError: ({reason}) => showLogin(reason), // e.g. "token_revoked": log in again
 * });
 * client.send("hello");                           // queued until the socket is open
 *
 * Use the server's JWT_WS_REJECTION="close" mode: in "deny" mode a refused handshake
 * is an HTTP error that a browser sees as a bare 1006, so the client can only retry.
 *
 * @module authx
 */

/** What a client does for each reason token of the close-code table (authx/close_codes.py). */
const ACTIONS = {
  invalid_token: "stop",
  token_expired: "refresh",
  insufficient_scope: "stop",
  token_revoked: "stop",
  origin_not_allowed: "stop",
  auth_timeout: "retry",
  too_many_connections: "stop",
  rate_limited: "retry",
  store_unavailable: "retry",
  keys_unavailable: "retry",
  server_error: "retry",
};

/** The table's default close codes, for a close that carries no reason token. */
const REASONS = {
  4001: "invalid_token",
  4002: "token_expired",
  4003: "insufficient_scope",
  4004: "token_revoked",
  4005: "origin_not_allowed",
  4008: "auth_timeout",
  4009: "too_many_connections",
  4029: "rate_limited",
  1013: "store_unavailable",
  1011: "server_error",
};
const CODES = Object.fromEntries(Object.entries(REASONS).map(([code, reason]) => [reason, +code]));

/** A connection that stayed open this long counts as established (the backoff starts over). */
const STABLE_MS = 5000;
/** The code reported for a failure without a close frame (network error, failed fetch). */
const NO_CLOSE_FRAME = 1006;

/**
 * What to do about a close (or a refused HTTP request): the table's row for the reason
 * token (text before ";"), else for the code; anything else is retried with backoff.
 * @param {number} code
 * @param {string} reason
 * @returns {{code: number, reason: string, action: "refresh"|"retry"|"stop", retryAfter: number|null}}
 */
function classify(code, reason) {
  const token = (reason || "").split(";")[0].trim();
  const wait = /retry_after=(\d+)/.exec(reason || "");
  const name = Object.hasOwn(ACTIONS, token) ? token : REASONS[code];
  const action = name ? ACTIONS[name] : "retry";
  return {code, reason: reason || "", action, retryAfter: wait ? +wait[1] : null};
}

/**
 * An Error for a refused HTTP request, carrying AuthX's answer: the `reason` token of its
 * JSON body and its `Retry-After`, so the client can follow the table for it too.
 * @param {Response} response
 * @returns {Promise<import("./authx.js").HttpError>}
 */
async function httpError(response) {
  const body = await response.json().catch(() => ({}));
  const after = Number(response.headers.get("Retry-After") || body.retry_after);
  return Object.assign(new Error(`${response.url}: HTTP ${response.status}`), {
    status: response.status,
    reason: typeof body.reason === "string" ? body.reason : "",
    retryAfter: after > 0 ? after : undefined,
  });
}

/** The value of cookie `name` in `document.cookie`, or "". */
function readCookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return decodeURIComponent(value.join("="));
  }
  return "";
}

/**
 * A `getToken` for an app whose refresh route reads the refresh token from an HttpOnly
 * cookie and checks the CSRF double submit (AuthX's `REFRESH_REQUIRED` with cookies):
 * it POSTs to `url` with the cookies and the CSRF cookie's value in the CSRF header, and
 * returns the `access_token` of the JSON answer. A refusal throws an Error carrying the
 * body's `reason` (e.g. "invalid_token": the refresh cookie is gone, log in again).
 *
 * @example
 * // What it does, written by hand:
 * async function getToken() {
 *   const csrf = document.cookie.match(/(?:^|; )csrf_refresh_token=([^;]*)/)?.[1] ?? "";
 *   const response = await fetch("/refresh", {method: "POST", credentials: "include",
 *     headers: {"X-CSRF-TOKEN": decodeURIComponent(csrf)}});
 *   return (await response.json()).access_token;
 * }
 *
 * @param {string} [url] the refresh route
 * @param {{csrfCookie?: string, csrfHeader?: string}} [names] the CSRF cookie and header
 * @returns {() => Promise<string>}
 */
export function refreshWithCookie(
  url = "/refresh",
  {csrfCookie = "csrf_refresh_token", csrfHeader = "X-CSRF-TOKEN"} = {},
) {
  return async () => {
    const headers = {[csrfHeader]: readCookie(csrfCookie)};
    const response = await fetch(url, {method: "POST", credentials: "include", headers});
    if (!response.ok) throw await httpError(response);
    return (await response.json()).access_token;
  };
}

/**
 * Connect to an AuthX WebSocket endpoint and stay connected (see authx.d.ts for the options).
 * @param {string} url ws:// or wss:// URL (a path is resolved against the page)
 * @param {import("./authx.js").ConnectOptions} [options]
 * @returns {import("./authx.js").Client}
 */
export function connect(url, options = {}) {
  const base = new URL(url, globalThis.location?.href);
  base.protocol = base.protocol.replace(/^http/, "ws");
  if (!/^wss?:$/.test(base.protocol)) throw new TypeError(`not a WebSocket URL: ${url}`);
  const transport = options.transport ?? (options.ticketUrl ? "ticket" : "subprotocol");
  if (!["ticket", "subprotocol", "cookie", "message", "query"].includes(transport)) {
    throw new TypeError(`unknown transport: ${transport}`);
  }
  if (transport === "ticket" && !options.ticketUrl) throw new TypeError('"ticket" needs ticketUrl');
  if (transport !== "cookie" && typeof options.getToken !== "function") {
    throw new TypeError("getToken is required");
  }
  const getToken = options.getToken;
  const protocols = options.protocols ?? (transport === "subprotocol" ? ["authx"] : []);
  const prefix = options.messagePrefix ?? "authx.";
  const {initial = 0.5, factor = 2, max = 30} = options.backoff ?? {};
  const queueing = (options.queue ?? "queue") === "queue";
  const queueLimit = options.queueLimit ?? 100;
  const call = (name, ...args) => {
    try {
      options[name]?.(...args);
    } catch (error) {
      reportError(error); // a failing callback must not break the connection
    }
  };

  /** @type {import("./authx.js").State} */
  let state = "connecting";
  let ws = null;           // the current socket
  let token = null;        // the last token getToken gave
  let attempt = 0;         // failed attempts since the last established connection
  let refreshed = false;   // a token_expired close was answered with a new token
  let stable = false;      // the current socket proved itself (app message, or open >= 5 s)
  let timer = null;        // the pending reconnect, or the stable timer
  let queue = [];          // messages waiting for an open socket
  let unconfirmed = [];    // messages sent before the socket proved itself, to resend

  const setState = (next, info = {}) => { state = next; call("onStateChange", next, info); };
  const closedMeanwhile = () => state === "closed"; // close() was called while we awaited
  const bounded = (list) => list.slice(Math.max(0, list.length - queueLimit));
  const transmit = (data) => {
    ws.send(data);
    if (queueing && !stable) unconfirmed = bounded([...unconfirmed, data]);
  };
  const establish = () => { stable = true; attempt = 0; refreshed = false; unconfirmed = []; };

  /** The token for the next attempt, fetching one only when there is none. */
  async function currentToken() {
    if (token === null && getToken) token = await getToken();
    return token;
  }

  /** One connection attempt: authenticate as the transport says, then open the socket. */
  async function open() {
    const target = new URL(base);
    let offered = protocols;
    try {
      const jwt = await currentToken();
      if (closedMeanwhile()) return;
      if (transport === "query") target.searchParams.set("token", jwt);
      if (transport === "subprotocol") offered = [`authx.bearer.${jwt}`, ...protocols];
      if (transport === "ticket") {
        const headers = {Authorization: `Bearer ${jwt}`};
        const response = await fetch(options.ticketUrl, {method: "POST", headers});
        if (!response.ok) throw await httpError(response);
        target.searchParams.set("ticket", (await response.json()).ticket);
      }
    } catch (error) {
      return failed(error);
    }
    if (closedMeanwhile()) return;
    try {
      ws = offered.length ? new WebSocket(target.href, offered) : new WebSocket(target.href);
    } catch (error) {
      return failed(error);
    }
    const socket = ws;
    stable = false;
    socket.onopen = () => {
      if (socket !== ws) return;
      if (transport === "message") socket.send(JSON.stringify({type: `${prefix}auth`, token}));
      timer = setTimeout(establish, STABLE_MS);
      setState("open", {protocol: socket.protocol});
      const waiting = queue;
      queue = [];
      for (const data of waiting) transmit(data);
    };
    socket.onmessage = (event) => {
      if (socket !== ws) return;
      const kind = inBand(event.data);
      if (kind === "expiring") refresh(socket);
      if (kind) return;
      if (!stable) { clearTimeout(timer); establish(); }
      call("onMessage", event.data);
    };
    socket.onclose = (event) => { if (socket === ws) closed(event.code, event.reason); };
  }

  /** "expiring" or "refreshed" for AuthX's own messages (kept from onMessage), else null. */
  function inBand(data) {
    if (typeof data !== "string" || !data.includes(prefix)) return null;
    try {
      const type = JSON.parse(data)?.type;
      if (type === `${prefix}expiring`) return "expiring";
      if (type === `${prefix}refreshed`) return "refreshed";
    } catch { /* not JSON: an app message */ }
    return null;
  }

  /** Answer `expiring`: a new token, sent in-band on the same socket. */
  async function refresh(socket) {
    if (!getToken) return; // cookie transport without getToken: the server closes with 4002
    try {
      const fresh = await getToken();
      token = fresh;
      if (socket === ws && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({type: `${prefix}refresh`, token: fresh}));
      }
    } catch {
      // No new token: the server closes with token_expired, and the table takes over.
    }
  }

  /** Getting a token or a ticket failed: an AuthX refusal follows the table, anything else backs off. */
  function failed(error) {
    if (state === "closed") return;
    const reason = typeof error?.reason === "string" ? error.reason : "";
    const code = CODES[reason.split(";")[0]] ?? NO_CLOSE_FRAME;
    const verdict = classify(code, reason);
    if (verdict.retryAfter === null && error?.retryAfter > 0) verdict.retryAfter = error.retryAfter;
    decide(verdict);
  }

  /** The socket closed (not by close()): decide from its code and reason. */
  function closed(code, reason) {
    clearTimeout(timer);
    if (queueing && !stable) queue = bounded([...unconfirmed, ...queue]);
    unconfirmed = [];
    ws = null;
    if (state !== "closed") decide(classify(code, reason));
  }

  /**
   * Refresh and reconnect at once, wait, or stop, as the close-code table says. A close
   * outside the table (1006, 1001, 1012, even 1000 from the server) is retried with backoff:
   * the client is meant to stay connected until close().
   */
  function decide({code, reason, action, retryAfter}) {
    if (action === "refresh" && refreshed) {
      stop(code, reason, "refresh"); // a fresh token was refused as expired too
      return;
    }
    if (action === "stop") {
      stop(code, reason, "stop");
      return;
    }
    let delay = 0;
    if (action === "refresh") {
      refreshed = true;
      token = null;
    } else {
      refreshed = false;
      attempt += 1;
      delay = retryAfter !== null
        ? retryAfter + Math.random() * initial
        : Math.random() * Math.min(max, initial * factor ** (attempt - 1));
    }
    setState("reconnecting", {delay, attempt, code, reason});
    timer = setTimeout(open, delay * 1000);
  }

  /** Stop because of the table: state "closed", then onAuthError (once: nothing follows). */
  function stop(code, reason, action) {
    queue = [];
    setState("closed", {code, reason});
    call("onAuthError", {code, reason, action});
  }

  setState("connecting", {});
  open();

  return {
    /**
     * Send `data` now if the socket is open; otherwise queue it (the oldest dropped past
     * queueLimit), or throw with queue "reject". Throws once the client is closed.
     */
    send(data) {
      if (state === "closed") throw new Error("authx: the client is closed");
      if (state === "open" && ws?.readyState === WebSocket.OPEN) return transmit(data);
      if (!queueing) throw new Error(`authx: not connected (${state})`);
      queue = bounded([...queue, data]);
    },
    /** Stop for good: no reconnect, the socket closed with 1000, state "closed". */
    close() {
      if (state === "closed") return;
      clearTimeout(timer);
      const socket = ws;
      ws = null;
      queue = [];
      unconfirmed = [];
      if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000);
      setState("closed", {code: 1000, reason: ""});
    },
    /** "connecting", "open", "reconnecting" or "closed". */
    get state() { return state; },
    /** The current WebSocket, or null between connections. */
    get socket() { return ws; },
  };
}
