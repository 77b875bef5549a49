"""An HTTP/1.1 load generator on asyncio with keep-alive connections (stdlib only).

Two ways to load a model:
- open loop (`rate`): request i is due at start + i/rate whatever the answers
  do; its latency counts from when it was due, so a server (or a client) that
  falls behind shows it in the latency instead of quietly sending less
  (no coordinated omission). Up to `max_connections` requests are in flight.
- closed loop (`concurrency`): C workers, each sending its next request when
  the previous answer is in.

The request is built once (bytes); answers are read by Content-Length or
chunked encoding, so one connection carries request after request. Why not
http.client in threads: one event loop on one core keeps up with over a
thousand requests/s on this 2-core machine, threads do not (scripts/bench_loadtest.py).
"""
from __future__ import annotations

import asyncio
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Callable, Optional
from urllib.parse import urlsplit

DEFAULT_MAX_CONNECTIONS = 256
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Target:
    url: str                      # base URL of the ingress, http(s)://host:port
    host: str                     # Host header the ingress routes on
    path: str                     # /v1/models/<name>:predict
    body: bytes
    token: Optional[str] = None   # sent as Authorization: Bearer
    tls: Optional[ssl.SSLContext] = None  # an https URL: the certificate is checked for `host`
    # An OpenAI streaming request (`"stream": true`): each answer is read as Server-Sent
    # Events, for the time to its first text chunk and its tokens.
    streamed: bool = False

    def request_bytes(self) -> bytes:
        lines = [f"POST {self.path} HTTP/1.1", f"Host: {self.host}",
                 "Content-Type: application/json", f"Content-Length: {len(self.body)}",
                 "Connection: keep-alive"]
        if self.token:
            lines.append(f"Authorization: Bearer {self.token}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body

    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http:// or https:// URL: {self.url}")
        if parts.scheme == "https" and self.tls is None:
            raise ValueError(f"{self.url} is https: the target needs a TLS context")
        return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)

    def connect_options(self) -> dict:
        """asyncio.open_connection's TLS options: the certificate is checked for the
        Host header (the model's host), whatever address is dialed."""
        if urlsplit(self.url).scheme != "https":
            return {}
        from components.serving.transport import server_name
        return {"ssl": self.tls, "server_hostname": server_name(self.host)}

    def check_tls(self, timeout: float = 10.0) -> None:
        """One TLS handshake before the test, so that an untrusted certificate is one
        clear error, not thousands of failed connections. Raises ssl.SSLError."""
        if urlsplit(self.url).scheme != "https":
            return
        options = self.connect_options()
        with socket.create_connection(self.address(), timeout) as raw:
            with options["ssl"].wrap_socket(raw, server_hostname=options["server_hostname"]):
                pass


@dataclass
class Outcome:
    """One request: when it was due (s after start), how long it took, what came back."""
    due: float
    latency: float
    status: int = 0                # 0: no HTTP answer
    error: str = ""                # connect, timeout, reset, protocol, stream
    # Streamed (Target.streamed): from due to the first chunk that carried text, and
    # the completion tokens (the server's usage count, else the chunks with text).
    ttft: Optional[float] = None
    tokens: int = 0
    tokens_from_usage: bool = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 and not self.error

    @property
    def done(self) -> float:
        return self.due + self.latency


@dataclass
class Progress:
    """Counters the progress line reads while the test runs."""
    started: float = 0.0
    sent: int = 0
    completed: int = 0
    errors: int = 0
    recent: list[float] = field(default_factory=list)  # latencies of the last answers


class ProtocolError(Exception):
    pass


class StreamProbe:
    """Reads a streamed answer's body as it arrives: when the first chunk with text
    came (`first`, on `clock`), and the stream's tokens (openai_protocol.EventStream)."""

    def __init__(self, clock: Callable[[], float]):
        from components.serving.openai_protocol import EventStream
        self.clock = clock
        self.events = EventStream()
        self.first: Optional[float] = None

    def feed(self, data: bytes) -> None:
        if self.events.feed(data) and self.first is None:
            self.first = self.clock()

    def finish(self) -> None:
        self.events.finish()
        if self.first is None and self.events.text_chunks:
            self.first = self.clock()


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.usable = True

    async def exchange(self, request: bytes, probe: Optional[StreamProbe] = None) -> int:
        """Sends `request`, reads the whole answer; returns its status. A `probe` is fed
        a 2xx answer's body piece by piece as it arrives (chunk by chunk when chunked)."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {lines[0]!r}")
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        feed = probe.feed if probe is not None and 200 <= status < 300 else (lambda _: None)
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size_line = await self.reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                feed((await self.reader.readexactly(size + 2))[:size])
                if size == 0:
                    break
        elif "content-length" in headers:
            feed(await self.reader.readexactly(int(headers["content-length"])))
        else:
            # No length: the body ends with the connection.
            while True:
                piece = await self.reader.read(65536)
                if not piece:
                    break
                feed(piece)
            self.usable = False
        if probe is not None:
            probe.finish()
        if headers.get("connection", "").lower() == "close" or parts[0] == "HTTP/1.0":
            self.usable = False
        return status

    def close(self) -> None:
        self.usable = False
        self.writer.close()


class Pool:
    """Keep-alive connections, opened on demand up to `limit`."""

    def __init__(self, address: tuple[str, int], limit: int, options: Optional[dict] = None):
        self.address, self.limit = address, limit
        self.options = options or {}
        self.idle: list[Connection] = []
        self.opened = 0
        self.freed = asyncio.Condition()

    async def get(self) -> Connection:
        async with self.freed:
            while not self.idle and self.opened >= self.limit:
                await self.freed.wait()
            if self.idle:
                return self.idle.pop()
            self.opened += 1
        try:
            reader, writer = await asyncio.open_connection(*self.address, **self.options)
        except BaseException:
            async with self.freed:
                self.opened -= 1
                self.freed.notify()
            raise
        return Connection(reader, writer)

    async def put(self, connection: Connection) -> None:
        async with self.freed:
            if connection.usable:
                self.idle.append(connection)
            else:
                connection.close()
                self.opened -= 1
            self.freed.notify()

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()


async def _one(pool: Pool, request: bytes, timeout: float, due: float, clock: Callable[[], float],
               start: float, progress: Progress, streamed: bool = False) -> Outcome:
    connection: Optional[Connection] = None
    error, status = "", 0
    probe = StreamProbe(clock) if streamed else None
    try:
        connection = await asyncio.wait_for(pool.get(), timeout)
        progress.sent += 1
        status = await asyncio.wait_for(connection.exchange(request, probe), timeout)
        if probe is not None and 200 <= status < 300 and \
                (probe.events.errors or not probe.events.done):
            error = "stream"  # an error event, or no `data: [DONE]` at the end
    except asyncio.TimeoutError:
        error = "timeout"
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        error = "connect" if connection is None else "reset"
    except OSError:
        error = "connect"
    except (ProtocolError, ValueError):
        error = "protocol"
    if connection is not None:
        if error:
            connection.usable = False
        await pool.put(connection)
    latency = clock() - start - due
    progress.completed += 1
    if error or not 200 <= status < 300:
        progress.errors += 1
    else:
        progress.recent.append(latency)
        if len(progress.recent) > 2000:
            del progress.recent[:1000]
    outcome = Outcome(due=due, latency=latency, status=status, error=error)
    if probe is not None and not error and 200 <= status < 300:
        outcome.ttft = None if probe.first is None else probe.first - start - due
        outcome.tokens = probe.events.tokens
        outcome.tokens_from_usage = probe.events.usage_tokens is not None
    return outcome


async def open_loop(target: Target, rate: float, duration: float, *,
                    timeout: float = DEFAULT_TIMEOUT, max_connections: int = DEFAULT_MAX_CONNECTIONS,
                    progress: Optional[Progress] = None) -> list[Outcome]:
    """Send rate*duration requests, request i due at i/rate seconds."""
    loop = asyncio.get_running_loop()
    clock = loop.time
    progress = progress or Progress()
    pool = Pool(target.address(), max_connections, target.connect_options())
    request = target.request_bytes()
    total = int(round(rate * duration))
    start = clock()
    progress.started = time.time()
    tasks = []
    i = 0
    try:
        while i < total:
            now = clock() - start
            # Launch every request that is due; then sleep until the next one.
            while i < total and i / rate <= now:
                tasks.append(asyncio.ensure_future(
                    _one(pool, request, timeout, i / rate, clock, start, progress,
                         target.streamed)))
                i += 1
            if i < total:
                await asyncio.sleep(max(0.0, i / rate - (clock() - start)))
        return list(await asyncio.gather(*tasks))
    finally:
        pool.close()


async def closed_loop(target: Target, concurrency: int, duration: float, *,
                      timeout: float = DEFAULT_TIMEOUT,
                      progress: Optional[Progress] = None) -> list[Outcome]:
    """`concurrency` workers, each sending its next request when an answer is in."""
    loop = asyncio.get_running_loop()
    clock = loop.time
    progress = progress or Progress()
    pool = Pool(target.address(), concurrency, target.connect_options())
    request = target.request_bytes()
    start = clock()
    progress.started = time.time()
    outcomes: list[Outcome] = []

    async def worker() -> None:
        while clock() - start < duration:
            outcomes.append(await _one(pool, request, timeout, clock() - start, clock, start,
                                       progress, target.streamed))

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        pool.close()
    return sorted(outcomes, key=lambda o: o.due)
