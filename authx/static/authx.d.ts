/**
 * AuthX browser client: a WebSocket that stays connected (declarations of authx.js).
 *
 * The client authenticates with one of AuthX's browser-safe transports, answers the
 * server's `authx.expiring` with an in-band `authx.refresh`, and follows the close-code
 * table: refresh then reconnect at once, retry with full-jitter backoff, or stop.
 */

/** How the token reaches the server (README "Browser-safe transports"). */
export type Transport = "ticket" | "subprotocol" | "cookie" | "message" | "query";

/** The client's life: "connecting" once, "open", "reconnecting" between sockets, "closed" for good. */
export type State = "connecting" | "open" | "reconnecting" | "closed";

/** What the close-code table says a client does. */
export type Action = "refresh" | "retry" | "stop";

/** Data a WebSocket can send. */
export type SendData = string | ArrayBufferLike | Blob | ArrayBufferView;

/** Exponential backoff with full jitter: delay = random(0, min(max, initial * factor ** (attempt - 1))). */
export interface Backoff {
  /** Seconds; default 0.5. */
  initial?: number;
  /** Default 2. */
  factor?: number;
  /** Seconds; default 30. */
  max?: number;
}

/** The second argument of onStateChange. */
export interface StateInfo {
  /** "reconnecting": seconds until the next attempt (0 after token_expired: reconnect at once). */
  delay?: number;
  /**
   * "reconnecting": failed attempts since the last established connection (1 for the first;
   * unchanged by a token_expired close, which reconnects at once).
   */
  attempt?: number;
  /**
   * "reconnecting" and "closed": the close code (1006 without a close frame: network error,
   * server down, or a refusal in "deny" mode; a refused token or ticket request counts as the
   * table's code for its `reason`). close() reports 1000.
   */
  code?: number;
  /** "reconnecting" and "closed": the close reason, e.g. "store_unavailable" or "rate_limited; retry_after=3". */
  reason?: string;
  /** "open": the subprotocol the server selected ("" for none). */
  protocol?: string;
}

/** The argument of onAuthError. */
export interface AuthError {
  /** The close code, e.g. 4004. */
  code: number;
  /** The close reason, e.g. "token_revoked". */
  reason: string;
  /** "stop" for a stop row of the table; "refresh" when a fresh token was refused as expired again. */
  action: Action;
}

/**
 * An Error a getToken (or the ticket request) throws for a refused HTTP request: with the
 * `reason` token of AuthX's JSON error body, the client follows the close-code table for it
 * (e.g. "invalid_token" stops). Any other error is retried with backoff.
 */
export interface HttpError extends Error {
  status?: number;
  reason?: string;
  /** Seconds, from Retry-After. */
  retryAfter?: number;
}

export interface ConnectOptions {
  /**
   * Resolves to a fresh access token (the app's refresh route): called for the first
   * connection, on `authx.expiring`, and after a token_expired close. Required except with
   * the cookie transport.
   */
  getToken?: () => string | Promise<string>;
  /** Default "ticket" when ticketUrl is given, else "subprotocol". */
  transport?: Transport;
  /** POSTed with `Authorization: Bearer <token>`; answers `{"ticket": ...}`. */
  ticketUrl?: string;
  /** Application subprotocols to offer; default ["authx"] with the subprotocol transport, else []. */
  protocols?: string[];
  /** The server's JWT_WS_MESSAGE_PREFIX; default "authx.". */
  messagePrefix?: string;
  backoff?: Backoff;
  /**
   * "queue" (default): send() while not open queues, the oldest dropped past queueLimit;
   * messages sent before the connection proved itself are sent again after a refusal.
   * "reject": send() while not open throws.
   */
  queue?: "queue" | "reject";
  /** Default 100. */
  queueLimit?: number;
  /** Every application message (the in-band `authx.*` messages are not passed on). */
  onMessage?: (data: MessageEvent["data"]) => void;
  onStateChange?: (state: State, info: StateInfo) => void;
  /** Called once, when the client stops because of the close-code table (state is "closed"). */
  onAuthError?: (error: AuthError) => void;
}

export interface Client {
  /** Send now when open; otherwise queue (or throw with queue "reject"). Throws once closed. */
  send(data: SendData): void;
  /** Stop for good: timers cleared, the socket closed with 1000, no reconnect, state "closed". */
  close(): void;
  readonly state: State;
  /** The current WebSocket, or null between connections. */
  readonly socket: WebSocket | null;
}

/**
 * Connect to an AuthX WebSocket endpoint (ws:// or wss://, or a path resolved against the
 * page) and stay connected. Throws TypeError for a bad URL, transport or missing option.
 */
export function connect(url: string, options?: ConnectOptions): Client;

/**
 * A getToken for a refresh route that reads the refresh cookie and checks the CSRF double
 * submit: POST `url` with credentials and `csrfHeader: <csrfCookie's value>`, returning the
 * answer's `access_token`; a refusal throws an HttpError.
 */
export function refreshWithCookie(
  url?: string,
  names?: { csrfCookie?: string; csrfHeader?: string },
): () => Promise<string>;
