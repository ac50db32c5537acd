"""Store fixtures: every store kind over its real backend (a temporary file, a redis-server)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pytest_redis import factories
from pytest_redis.executor import RedisExecutor
from redis.backoff import NoBackoff
from redis.retry import Retry

from authx.stores import MemoryStore, Store

#: Redis deployments besides the one plain server: each is the "redis" store kind.
REDIS_DEPLOYMENTS = {"redis-tls": "tls", "redis-sentinel": "sentinel", "redis-cluster": "cluster"}
ALL_KINDS = ["memory", "sqlite", "redis", *REDIS_DEPLOYMENTS]
SHARED_KINDS = ["sqlite", "redis", *REDIS_DEPLOYMENTS]


def _find_redis_server() -> str | None:
    found = shutil.which("redis-server")
    if found is None and Path("/usr/bin/redis-server").exists():
        found = "/usr/bin/redis-server"
    return found


def _find_redis_cli() -> str | None:
    found = shutil.which("redis-cli")
    if found is None and Path("/usr/bin/redis-cli").exists():
        found = "/usr/bin/redis-cli"
    return found


ROOT = Path(__file__).resolve().parents[2]
REDIS_SERVER = _find_redis_server()
REDIS_CLI = _find_redis_cli()

# Session-scoped real servers, each on a free 127.0.0.1 port; the second one is
# for the fault tests, which stop and restart it.
redis_proc = factories.redis_proc(executable=REDIS_SERVER or "redis-server", port=None)
redis_fault_proc = factories.redis_proc(executable=REDIS_SERVER or "redis-server", port=None)


def require_redis_server() -> None:
    """Skip without redis-server, except on CI where its absence is a failure."""
    if REDIS_SERVER is not None:
        return
    reason = "redis-server is not installed (apt-get install redis-server)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; it is required when CI=true")
    pytest.skip(reason)


def require_redis_cli() -> None:
    """Skip without redis-cli (it creates clusters), except on CI where it must be there."""
    if REDIS_CLI is not None:
        return
    reason = "redis-cli is not installed (apt-get install redis-tools)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; it is required when CI=true")
    pytest.skip(reason)


def url_of(proc: RedisExecutor) -> str:
    return f"redis://{proc.host}:{proc.port}/0"


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    """The session's redis-server."""
    require_redis_server()
    proc: RedisExecutor = request.getfixturevalue("redis_proc")
    return url_of(proc)


@pytest.fixture
def fault_redis(request: pytest.FixtureRequest) -> Iterator[RedisExecutor]:
    """A redis-server of its own that a test may stop; it is running again afterwards."""
    require_redis_server()
    proc: RedisExecutor = request.getfixturevalue("redis_fault_proc")
    yield proc
    if not proc.running():
        proc.start()


@dataclass
class Backend:
    """One backend of one store kind; :meth:`open` makes another store instance over it."""

    kind: str
    url: str
    opened: list[Store] = field(default_factory=list)
    #: For the redis kind: "server", "tls", "sentinel" or "cluster".
    deployment: str = "server"

    def open(self) -> Store:
        from authx.stores import store_from_url

        if self.kind == "memory":
            # A memory store's backend is the object itself.
            if not self.opened:
                self.opened.append(MemoryStore())
            return self.opened[0]
        store = store_from_url(self.url)
        self.opened.append(store)
        return store

    async def close_all(self) -> None:
        for store in self.opened:
            await store.close()


def make_backend(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if kind == "memory":
        return Backend(kind, "memory://")
    if kind == "sqlite":
        return Backend(kind, f"sqlite:///{tmp_path / 'authx.db'}?poll_interval=0.02")
    # A prefix per test keeps tests apart on the shared server.
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    if kind in REDIS_DEPLOYMENTS:
        deployment = REDIS_DEPLOYMENTS[kind]
        servers: RedisTLS | SentinelGroup | RedisClusterGroup = request.getfixturevalue(
            f"redis_{deployment}"
        )
        return Backend("redis", servers.url(prefix=prefix), deployment=deployment)
    url = request.getfixturevalue("redis_url")
    return Backend(kind, f"{url}?prefix={prefix}")


@pytest.fixture(params=ALL_KINDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Every store kind, in turn."""
    made = make_backend(request.param, request, tmp_path)
    yield made
    await made.close_all()


@pytest.fixture(params=SHARED_KINDS)
async def shared_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """The store kinds that several processes share."""
    made = make_backend(request.param, request, tmp_path)
    yield made
    await made.close_all()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()


# Redis deployments started by the tests: TLS with ACL users, Sentinel, Cluster. Every
# process listens on 127.0.0.1 only and is stopped when its fixture ends.

SERVICE = "mymaster"
PASSWORD = "pa$$ w0rd/42"  # percent-encoded in URLs; never in a log line


def free_port(*, cluster_bus: bool = False) -> int:
    """A free 127.0.0.1 port (and, for a cluster node, its bus port: port + 10000)."""
    for _ in range(200):
        port = random.randint(20_000, 30_000)
        wanted = [port, port + 10_000] if cluster_bus else [port]
        try:
            for candidate in wanted:
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair found")


@dataclass
class RedisProcess:
    """One redis-server (or sentinel) process; its output goes to ``log``."""

    port: int
    args: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [REDIS_SERVER or "redis-server", *self.args], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server {self.args} did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def kill(self) -> None:
        """Die at once, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)

    def admin(self, **options: object) -> redis.Redis:
        """A client for setting up and checking, which fails at once (no retries)."""
        return redis.Redis(  # type: ignore[arg-type]
            host="127.0.0.1",
            port=self.port,
            socket_timeout=5,
            retry=Retry(NoBackoff(), 0),
            **options,
        )


def start_redis(directory: Path, name: str, *args: str, port: int | None = None) -> RedisProcess:
    """A redis-server on 127.0.0.1 that saves nothing; ``args`` are more settings."""
    port = free_port() if port is None else port
    home = directory / name
    home.mkdir(parents=True, exist_ok=True)
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(home)]
    # A replica starts its sync at once, not after the default 5 s wait for others.
    common += ["--repl-diskless-sync-delay", "0"]
    if "--port" not in args:
        common += ["--port", str(port)]
    server = RedisProcess(port, [*common, *args], directory / f"{name}.log")
    server.start()
    return server


def wait_until(condition: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    """Poll ``condition`` (exceptions count as False) until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


@dataclass
class TLSFiles:
    """A CA with a server and a client certificate, and another CA that signed neither."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _certificate(
    directory: Path, name: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None
) -> tuple[x509.Name, ec.EllipticCurvePrivateKey]:
    """Write ``name``.pem and ``name``.key: a CA when ``issuer`` is None, else a leaf it signs."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"authx test {name}")])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0] if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        # Servers are clients too: of their master, of the other cluster nodes.
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if name == "server":
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
    certificate = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    (directory / f"{name}.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return subject, key


def make_tls_files(directory: Path) -> TLSFiles:
    ca = _certificate(directory, "ca", None)
    _certificate(directory, "server", ca)
    _certificate(directory, "client", ca)
    _certificate(directory, "other-ca", None)
    return TLSFiles(
        *(
            directory / f
            for f in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")
        ),
        other_ca=directory / "other-ca.pem",
    )


@dataclass
class RedisTLS:
    """A redis-server that speaks TLS only, checks client certificates and has ACL users.

    ``authx`` may run every command; ``limited`` every one but INFO; the default user is off.
    """

    server: RedisProcess
    files: TLSFiles

    def url(
        self,
        *,
        user: str = "authx",
        password: str = PASSWORD,
        ca: Path | None = None,
        client_certificate: bool = True,
        **options: str,
    ) -> str:
        query = {"ssl_ca_certs": str(ca or self.files.ca), "ssl_cert_reqs": "required"}
        if client_certificate:
            query["ssl_certfile"] = str(self.files.client_cert)
            query["ssl_keyfile"] = str(self.files.client_key)
        credentials = f"{user}:{quote(password, safe='')}"
        query.update(options)
        return f"rediss://{credentials}@127.0.0.1:{self.server.port}/0?{urlencode(query)}"


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls-files"))


def tls_settings(files: TLSFiles, port: int, *, users: bool = True) -> list[str]:
    """A server that speaks TLS only (on ``port``), wants client certificates, has ACL users.

    ``authx`` may run every command; ``limited`` only what the store needs, INFO aside;
    the default user is off.
    """
    settings = [
        *("--port", "0", "--tls-port", str(port), "--tls-replication", "yes"),
        *("--tls-cert-file", str(files.server_cert), "--tls-key-file", str(files.server_key)),
        *("--tls-ca-cert-file", str(files.ca), "--tls-auth-clients", "yes"),
    ]
    if not users:
        return settings
    return [
        *settings,
        *("--user", "default", "off"),
        *("--user", "authx", "on", f">{PASSWORD}", "~*", "&*", "+@all"),
        *("--user", "limited", "on", f">{PASSWORD}", "~tls-limited:*", "&tls-limited:*"),
        *("+@read", "+@write", "+@pubsub", "+@scripting", "+@connection", "+time"),
        "+cluster|slots",
    ]


def tls_query(files: TLSFiles, **options: str) -> str:
    query = {
        "ssl_ca_certs": str(files.ca),
        "ssl_certfile": str(files.client_cert),
        "ssl_keyfile": str(files.client_key),
        "ssl_cert_reqs": "required",
        **options,
    }
    return urlencode(query)


@pytest.fixture(scope="session")
def redis_tls(tmp_path_factory: pytest.TempPathFactory, tls_files: TLSFiles) -> Iterator[RedisTLS]:
    require_redis_server()
    directory = tmp_path_factory.mktemp("redis-tls")
    port = free_port()
    server = start_redis(directory, "tls", *tls_settings(tls_files, port), port=port)
    yield RedisTLS(server, tls_files)
    server.stop()


SENTINEL_PASSWORD = "sentinel's own"


@pytest.fixture(scope="session")
def redis_tls_sentinel(
    tmp_path_factory: pytest.TempPathFactory, tls_files: TLSFiles
) -> Iterator[str]:
    """The URL of a TLS-only master and a TLS-only sentinel that wants its own password."""
    require_redis_server()
    directory = tmp_path_factory.mktemp("redis-tls-sentinel")
    master_port, port = free_port(), free_port()
    master = start_redis(
        directory, "master", *tls_settings(tls_files, master_port), port=master_port
    )
    config = directory / "sentinel.conf"
    settings = tls_settings(tls_files, port, users=False)
    lines = [" ".join(settings[n : n + 2]).removeprefix("--") for n in range(0, len(settings), 2)]
    config.write_text(
        "\n".join(lines) + f'\nbind 127.0.0.1\ndir {directory}\nrequirepass "{SENTINEL_PASSWORD}"\n'
        f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} 1\n"
        f"sentinel auth-user {SERVICE} authx\n"
        f'sentinel auth-pass {SERVICE} "{PASSWORD}"\n'
    )
    sentinel = RedisProcess(port, [str(config), "--sentinel"], directory / "sentinel.log")
    try:
        sentinel.start()
        query = tls_query(tls_files, sentinel_password=SENTINEL_PASSWORD)
        credentials = f"authx:{quote(PASSWORD, safe='')}"
        yield f"rediss+sentinel://{credentials}@127.0.0.1:{port}/{SERVICE}/0?{query}"
    finally:
        sentinel.stop()
        master.stop()


@pytest.fixture(scope="session")
def redis_tls_cluster(
    tmp_path_factory: pytest.TempPathFactory, tls_files: TLSFiles
) -> Iterator[str]:
    """The URL of a three-master cluster that speaks TLS only, its bus included."""
    require_redis_server()
    require_redis_cli()
    directory = tmp_path_factory.mktemp("redis-tls-cluster")
    nodes = []
    try:
        for n in range(3):
            port = free_port(cluster_bus=True)
            nodes.append(
                start_redis(
                    directory,
                    f"node-{n}",
                    *tls_settings(tls_files, port),
                    *("--cluster-enabled", "yes", "--tls-cluster", "yes"),
                    *("--cluster-config-file", str(directory / f"node-{n}.conf")),
                    port=port,
                )
            )
        files = tls_files
        command = [REDIS_CLI or "redis-cli", "--tls", "--cacert", str(files.ca)]
        command += ["--cert", str(files.client_cert), "--key", str(files.client_key)]
        command += ["--user", "authx", "--pass", PASSWORD, "--no-auth-warning", "--cluster"]
        command += ["create", *(f"127.0.0.1:{node.port}" for node in nodes), "--cluster-yes"]
        subprocess.run(
            command,
            check=True,
            capture_output=True,
            timeout=30,
        )
        admin = {"ssl": True, "ssl_ca_certs": str(files.ca), "ssl_certfile": str(files.client_cert)}
        admin |= {"ssl_keyfile": str(files.client_key), "username": "authx", "password": PASSWORD}
        for node in nodes:
            with node.admin(decode_responses=True, **admin) as client:
                wait_until(
                    lambda c=client: c.cluster("INFO")["cluster_state"] == "ok", "cluster ok"
                )
        credentials = f"authx:{quote(PASSWORD, safe='')}"
        yield f"rediss+cluster://{credentials}@127.0.0.1:{nodes[0].port}/?{tls_query(files)}"
    finally:
        for node in nodes:
            node.stop()


@dataclass
class SentinelGroup:
    """A master, its replica and three sentinels watching them (quorum 2)."""

    master: RedisProcess
    replica: RedisProcess
    sentinels: list[RedisProcess]

    def url(self, **options: str) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        query = f"?{urlencode(options)}" if options else ""
        return f"redis+sentinel://{hosts}/{SERVICE}/0{query}"

    def master_port(self) -> int:
        with self.sentinels[0].admin(decode_responses=True) as sentinel:
            return int(sentinel.sentinel_get_master_addr_by_name(SERVICE)[1])

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Until the replica is in sync and every sentinel knows the others and the replica."""

        def ready() -> bool:
            with self.replica.admin() as replica:
                if replica.info("replication")["master_link_status"] != "up":
                    return False
            for process in self.sentinels:
                with process.admin() as sentinel:
                    replicas = sentinel.sentinel_slaves(SERVICE)
                    if len(sentinel.sentinel_sentinels(SERVICE)) < 2 or not replicas:
                        return False
                    if any(r["is_sdown"] for r in replicas):
                        return False
            return True

        wait_until(ready, "the sentinels to know each other and the replica", timeout)

    def stop(self) -> None:
        for process in [*self.sentinels, self.replica, self.master]:
            process.stop()


def start_sentinel_group(directory: Path) -> SentinelGroup:
    started: list[RedisProcess] = []
    try:
        master = start_redis(directory, "master")
        started.append(master)
        replica = start_redis(directory, "replica", "--replicaof", "127.0.0.1", str(master.port))
        started.append(replica)
        for n in range(3):
            port = free_port()
            home = directory / f"sentinel-{n}"
            home.mkdir()
            config = home / "sentinel.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {home}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {master.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 500\n"
                f"sentinel failover-timeout {SERVICE} 2000\n"
            )
            sentinel = RedisProcess(
                port, [str(config), "--sentinel"], directory / f"sentinel-{n}.log"
            )
            sentinel.start()
            started.append(sentinel)
    except BaseException:
        for process in started:
            process.stop()
        raise
    return SentinelGroup(master, replica, started[2:])


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    """A Sentinel deployment shared by the session's tests; none of them fails it over."""
    require_redis_server()
    group = start_sentinel_group(tmp_path_factory.mktemp("redis-sentinel"))
    try:
        group.wait_ready()
        yield group
    finally:
        group.stop()


@pytest.fixture
def failover_sentinel(tmp_path: Path) -> Iterator[SentinelGroup]:
    """A Sentinel deployment of the test's own, which it may fail over."""
    require_redis_server()
    group = start_sentinel_group(tmp_path)
    try:
        group.wait_ready()
        yield group
    finally:
        group.stop()


@dataclass
class RedisClusterGroup:
    """Three masters sharing the 16384 slots; the first has a replica."""

    masters: list[RedisProcess]
    replica: RedisProcess

    def url(self, **options: str) -> str:
        hosts = ",".join(f"127.0.0.1:{m.port}" for m in self.masters[:2])
        query = f"?{urlencode(options)}" if options else ""
        return f"redis+cluster://{hosts}/{query}"

    def stop(self) -> None:
        for process in [self.replica, *self.masters]:
            process.stop()


def start_cluster(directory: Path) -> RedisClusterGroup:
    def node(name: str) -> RedisProcess:
        port = free_port(cluster_bus=True)
        return start_redis(
            directory,
            name,
            *("--cluster-enabled", "yes", "--cluster-node-timeout", "2000"),
            *("--cluster-config-file", str(directory / f"{name}-nodes.conf")),
            port=port,
        )

    started: list[RedisProcess] = []
    try:
        for name in ("master-0", "master-1", "master-2", "replica"):
            started.append(node(name))
    except BaseException:
        for process in started:
            process.stop()
        raise
    masters, replica = started[:3], started[3]
    group = RedisClusterGroup(masters, replica)
    try:
        subprocess.run(
            [REDIS_CLI or "redis-cli", "--cluster", "create"]
            + [f"127.0.0.1:{m.port}" for m in masters]
            + ["--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        with (
            masters[0].admin(decode_responses=True) as first,
            replica.admin(decode_responses=True) as joining,
        ):
            first_id = first.cluster("MYID")
            joining.cluster("MEET", "127.0.0.1", str(masters[0].port))
            wait_until(
                lambda: first_id in str(joining.cluster("NODES")), "the replica to meet the cluster"
            )
            joining.cluster("REPLICATE", first_id)
            wait_until(
                lambda: joining.info("replication")["master_link_status"] == "up",
                "the cluster replica to sync",
            )
        for process in [*masters, replica]:
            with process.admin(decode_responses=True) as client:
                wait_until(
                    lambda c=client: c.cluster("INFO")["cluster_state"] == "ok", "cluster ok"
                )
    except BaseException:
        group.stop()
        raise
    return group


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterGroup]:
    require_redis_server()
    require_redis_cli()
    group = start_cluster(tmp_path_factory.mktemp("redis-cluster"))
    yield group
    group.stop()
