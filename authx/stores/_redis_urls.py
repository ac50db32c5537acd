"""Reading a Redis store URL: which deployment (one server, Sentinel, Cluster) and its options.

The grammar (``[x]`` optional, ``{x}`` repeated, ``s`` in ``rediss`` turns TLS on)::

    redis[s]://[[user]:password@]host[:port][/db][?options]
    redis[s]+sentinel://[[user]:password@]host[:port]{,host[:port]}/service[/db][?options]
    redis[s]+cluster://[[user]:password@]host[:port]{,host[:port]}[/][?options]

- ``redis[s]://``: one server (or a managed endpoint that fails over behind one name).
- ``+sentinel``: the hosts are sentinels (port 26379 by default); ``service`` is the name
  they monitor (``sentinel monitor <service> ...``). The store talks to the master they
  name, and finds the new one after a failover.
- ``+cluster``: the hosts are some nodes of a Redis Cluster (port 6379 by default); the
  rest are discovered. A cluster has database 0 only.

``user:password`` (percent-encoded) is the ACL user of the data nodes: the server, the
Sentinel-managed master and replicas, every cluster node. It needs the prefix's keys and
channel and ``+@read +@write +@pubsub +@scripting +@connection +time`` (the rate-limit
script reads the server's clock), ``+info`` for ``wait_replicas=auto``, and
``+cluster|slots`` on a cluster. With TLS, every connection is encrypted (the
sentinels' too) and verified against ``ssl_ca_certs``.

Options, besides redis-py's own connection options (``socket_timeout``,
``max_connections``, ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``,
``ssl_cert_reqs``, ``ssl_check_hostname``, ...):

- ``prefix=authx``: the start of every key and of the event channel;
- ``wait_replicas=auto``: how many replicas must hold a revocation before it is reported
  as done, so that a failover cannot lose it (``WAIT``). ``auto``: one, when the master
  that took the write has replicas connected (``INFO replication``, read at most every
  few seconds), none otherwise; ``N``: always ``N`` (a revocation fails when fewer
  acknowledge in time); ``0``: never wait;
- ``wait_timeout=0.5``: seconds the replicas have to acknowledge;
- ``sentinel_username``, ``sentinel_password``: the sentinels' own credentials, when they
  require some (``requirepass`` in ``sentinel.conf``); by default none is sent to them.

Example: ``rediss+sentinel://authx:s3cret@10.0.0.1,10.0.0.2,10.0.0.3/mymaster/0?ssl_ca_certs=/etc/redis/ca.pem``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from redis.asyncio.connection import SSLConnection, parse_url

from authx.exceptions import BadConfigurationError

__all__ = ["SCHEMES", "Deployment", "RedisURL", "parse_redis_url"]

Deployment = Literal["server", "sentinel", "cluster"]

#: Every scheme the Redis store accepts, and the deployment each names.
SCHEMES: dict[str, Deployment] = {
    "redis": "server",
    "rediss": "server",
    "redis+sentinel": "sentinel",
    "rediss+sentinel": "sentinel",
    "redis+cluster": "cluster",
    "rediss+cluster": "cluster",
}
_DEFAULT_PORTS: dict[Deployment, int] = {"server": 6379, "sentinel": 26379, "cluster": 6379}
#: The store's own options: read here, never handed to redis-py.
_STORE_OPTIONS = (
    "prefix",
    "wait_replicas",
    "wait_timeout",
    "sentinel_username",
    "sentinel_password",
)
DEFAULT_WAIT_TIMEOUT = 0.5


@dataclass(frozen=True)
class RedisURL:
    """A parsed store URL: where Redis is, how to connect, and the store's options."""

    deployment: Deployment
    #: The server; the sentinels; or the cluster nodes to start from.
    nodes: tuple[tuple[str, int], ...]
    #: redis-py's connection options for the data nodes (credentials, db, timeouts, TLS).
    connection: dict[str, Any]
    #: ``sentinel``: the monitored master's name.
    service: str = ""
    #: ``sentinel``: the connection options for the sentinels themselves.
    sentinel: dict[str, Any] = field(default_factory=dict)
    prefix: str | None = None
    #: Replicas that must acknowledge a revocation; None: ``auto``.
    wait_replicas: int | None = None
    wait_timeout: float = DEFAULT_WAIT_TIMEOUT


def parse_redis_url(url: str) -> RedisURL:
    """Read ``url`` (the grammar above); a malformed one raises BadConfigurationError."""
    scheme = url.partition("://")[0].lower()
    deployment = SCHEMES.get(scheme)
    if deployment is None:
        raise BadConfigurationError(
            f"JWT_STORE_URL scheme {scheme!r} is not a Redis scheme; use one of {sorted(SCHEMES)}"
        )
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {name: value for name, value in query if name in _STORE_OPTIONS}
    kept = urlencode([(name, value) for name, value in query if name not in _STORE_OPTIONS])
    common: dict[str, Any] = {
        "prefix": ours.get("prefix") or None,
        "wait_replicas": _wait_replicas(ours.get("wait_replicas", "auto")),
        "wait_timeout": _wait_timeout(ours.get("wait_timeout")),
    }
    userinfo, _, hosts = parts.netloc.rpartition("@")
    hosts = hosts or "localhost"
    nodes = tuple(_node(host, _DEFAULT_PORTS[deployment]) for host in hosts.split(","))
    path = [unquote(piece) for piece in parts.path.split("/") if piece]
    # redis-py reads credentials, db and its options: hand it a one-server URL.
    single = urlunsplit(
        (
            "rediss" if scheme.startswith("rediss") else "redis",
            f"{userinfo}@{hosts.split(',')[0]}" if userinfo else hosts.split(",")[0],
            "",
            kept,
            "",
        )
    )
    connection = _connection_options(single)
    if deployment != "sentinel" and ("sentinel_username" in ours or "sentinel_password" in ours):
        raise BadConfigurationError("JWT_STORE_URL: sentinel_* options need redis+sentinel://")
    if deployment == "server":
        if len(nodes) > 1 or len(path) > 1:
            raise BadConfigurationError(
                "JWT_STORE_URL: redis:// names one server: redis://host:port/db; for "
                "several, use redis+sentinel:// or redis+cluster://"
            )
        if path and "db" not in connection:
            connection["db"] = _integer("database", path[0])
        return RedisURL("server", nodes, connection, **common)
    if deployment == "cluster":
        if path not in ([], ["0"]) or connection.pop("db", 0) != 0:
            raise BadConfigurationError("JWT_STORE_URL: a Redis Cluster has database 0 only")
        return RedisURL("cluster", nodes, connection, **common)

    if not path or len(path) > 2:
        raise BadConfigurationError(
            "JWT_STORE_URL: redis+sentinel:// needs the master's name: "
            "redis+sentinel://host:port[,host:port]/service[/db]"
        )
    if len(path) == 2:
        connection["db"] = _integer("database", path[1])
    # The sentinels share the connection's timeouts and TLS, not its credentials.
    sentinel = {k: v for k, v in connection.items() if k.startswith(("socket_", "ssl"))}
    for option in ("username", "password"):
        if f"sentinel_{option}" in ours:
            sentinel[option] = ours[f"sentinel_{option}"]
    return RedisURL("sentinel", nodes, connection, path[0], sentinel, **common)


def _connection_options(single: str) -> dict[str, Any]:
    try:
        options: dict[str, Any] = dict(parse_url(single))
    except ValueError as exc:
        raise BadConfigurationError(f"JWT_STORE_URL: {exc}") from None
    for key in ("host", "port"):
        options.pop(key, None)
    if options.pop("connection_class", None) is SSLConnection:
        options["ssl"] = True
    return options


def _node(text: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``."""
    host, port = text, ""
    if text.startswith("["):
        host, _, after = text[1:].partition("]")
        port = after.removeprefix(":")
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not host:
        raise BadConfigurationError("JWT_STORE_URL: a host is missing")
    return unquote(host), _integer("port", port) if port else default_port


def _integer(name: str, text: str) -> int:
    if not text.isdigit():
        raise BadConfigurationError(f"JWT_STORE_URL: the {name} must be a number, not {text!r}")
    return int(text)


def _wait_replicas(text: str) -> int | None:
    if text == "auto":
        return None
    if not text.isdigit():
        raise BadConfigurationError(
            f"JWT_STORE_URL: wait_replicas must be 'auto' or a number of replicas, not {text!r}"
        )
    return int(text)


def _wait_timeout(text: str | None) -> float:
    if text is None:
        return DEFAULT_WAIT_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= 60:
        raise BadConfigurationError(
            f"JWT_STORE_URL: wait_timeout must be seconds between 0 and 60, not {text!r}"
        )
    return seconds
