"""The OTLP/HTTP collector: ``POST /v1/traces`` and ``POST /v1/metrics`` (protobuf or JSON,
gzip or not) into the SQLite trace store; both optionally forwarded, as received, to an
upstream OTLP/HTTP endpoint. Of metrics it stores the memory gauges ``memlens run`` sends
(:mod:`memlens.tracing.otlp_metrics`) and forwards the whole request.

Replies follow the OTLP/HTTP spec: 200 with an ``ExportTraceServiceResponse`` in the
request's content type once the spans (or samples) are committed to the database (so an acknowledged
span survives ``kill -9``), 400 for a body that does not decode, 413 past the size limit,
415 for other content types, 404 for other paths, 503 with ``Retry-After`` when the write
queue is full. HTTP handler threads read (and gunzip) request bodies and hand them to one
writer thread through a bounded queue; the writer decodes them straight into store rows and
commits them in batches. Decoding in the writer, not the handlers, is ~30% faster: one thread
holds the GIL for decoding and binding rows instead of two fighting over it.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from pathlib import Path

from google.protobuf.message import Message as ProtoMessage
from google.rpc.status_pb2 import Status

from memlens.tracing.otlp import (
    JSON,
    PROTOBUF,
    BadPayloadError,
    PayloadTooLargeError,
    decode_request,
    encode_response,
    gunzip_bounded,
    span_rows,
)
from memlens.tracing.otlp_metrics import decode_metrics_request, samples_from_request
from memlens.tracing.records import MemorySample, SpanRow
from memlens.tracing.store import TraceStore

__all__ = ["DEFAULT_DB", "DEFAULT_PORT", "Collector", "CollectorConfig", "forward_urls"]

_log = logging.getLogger(__name__)

DEFAULT_PORT = 4318
"""The OTLP/HTTP port."""
DEFAULT_DB = Path(".memlens/traces.db")
"""The workspace's trace store, relative to the working directory."""


@dataclass(frozen=True)
class CollectorConfig:
    """How the collector listens, stores and forwards."""

    db_path: Path = DEFAULT_DB
    host: str = "127.0.0.1"
    """Interface to bind; loopback unless you mean to accept spans from other machines."""
    port: int = DEFAULT_PORT
    """TCP port; 0 picks a free one."""
    max_body_bytes: int = 8 * 1024 * 1024
    """Largest request body, after gzip expansion, in bytes (larger ones get 413)."""
    queue_requests: int = 1024
    """Decoded requests waiting for the writer before new ones get 503."""
    batch_spans: int = 5000
    """Most spans the writer commits in one transaction."""
    retention_max_age_s: float | None = 7 * 24 * 3600.0
    """Delete spans received longer ago than this (seconds); None keeps them."""
    retention_max_spans: int | None = 1_000_000
    """Keep at most this many spans, deleting the oldest; None for no limit."""
    retention_max_samples: int | None = 1_000_000
    """Keep at most this many memory samples, deleting the oldest; None for no limit."""
    retention_every_s: float = 60.0
    """How often the writer applies retention, in seconds."""
    checkpoint_every_s: float = 0.5
    """How often a thread of its own copies the write-ahead log into the database, in
    seconds (the writer does not, so commits never wait for fsync)."""
    checkpoint_truncate_pages: int = 16384
    """Log pages (4 KiB) left after a checkpoint that make the next one wait for the writer
    and empty the log, so that it cannot grow without bound under sustained load."""
    forward_url: str | None = None
    """Upstream OTLP/HTTP endpoint, its base (``http://otel:4318``) or its traces URL
    (``http://otel:4318/v1/traces``), or None; see :func:`forward_urls`."""
    forward_retries: int = 5
    """Attempts per forwarded request, with exponential backoff from 0.5 s."""
    forward_queue: int = 1024
    """Requests waiting to be forwarded; a request that finds it full is not forwarded
    (with a warning)."""


_TRACES = "/v1/traces"
_METRICS = "/v1/metrics"


def forward_urls(url: str) -> dict[str, str]:
    """Where the collector forwards each OTLP path, given ``--forward URL``: the base of
    ``url`` (``url`` less a final ``/v1/traces``, as OTLP exporters append it) plus the
    path, so traces go to ``BASE/v1/traces`` and metrics to ``BASE/v1/metrics``."""
    base = url.removesuffix(_TRACES).rstrip("/")
    return {_TRACES: base + _TRACES, _METRICS: base + _METRICS}


@dataclass
class _Batch:
    """One request, from the handler that read it to the writer that decodes and commits it."""

    decode: Callable[[_Batch], None]
    """Fills ``spans``/``samples``/``forward`` from ``body``; raises BadPayloadError."""
    body: bytes
    content_type: str
    forward_url: str | None
    """Where to forward the request once stored; None when not forwarding."""
    spans: list[SpanRow] = field(default_factory=list)
    samples: list[MemorySample] = field(default_factory=list)
    forward: bytes | None = None
    """The request as protobuf, for the upstream; None when not forwarded."""
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


def _as_protobuf(batch: _Batch, request: ProtoMessage) -> None:
    """Keep the request as protobuf for the upstream, when forwarding."""
    if batch.forward_url is not None:
        protobuf = batch.content_type == PROTOBUF
        batch.forward = batch.body if protobuf else request.SerializeToString()


def _traces(batch: _Batch) -> None:
    request = decode_request(batch.body, batch.content_type)
    _as_protobuf(batch, request)
    batch.spans = span_rows(request)


def _metrics(batch: _Batch) -> None:
    request = decode_metrics_request(batch.body, batch.content_type)
    _as_protobuf(batch, request)
    batch.samples = samples_from_request(request)


_ENDPOINTS: dict[str, Callable[[_Batch], None]] = {
    _TRACES: _traces,
    _METRICS: _metrics,
}
"""OTLP/HTTP path → decoder of its body, run by the writer."""


class Collector:
    """Receives OTLP/HTTP spans and memory metrics and stores them; :meth:`start` then
    :meth:`stop`."""

    def __init__(self, config: CollectorConfig) -> None:
        self.config = config
        self._queue: queue.Queue[_Batch | None] = queue.Queue(config.queue_requests)
        self._forward: queue.Queue[tuple[str, bytes] | None] = queue.Queue(config.forward_queue)
        self.forward_urls = forward_urls(config.forward_url) if config.forward_url else {}
        """OTLP path → upstream URL; empty when not forwarding."""
        self._refusals: set[tuple[str, int]] = set()
        """(upstream URL, HTTP status) already logged as a warning."""
        # the store first: a collector that cannot open it never answers on the port (the
        # language server takes an answer for a running collector)
        TraceStore(config.db_path).close()  # the schema; the writer opens its own connection
        self._server = _OtlpServer((config.host, config.port), self)
        self._threads: list[threading.Thread] = []
        self._written = threading.Event()  # set by the writer after a commit
        self._stopped = threading.Event()
        self._accepting = threading.Lock()
        """Held to queue a batch and to stop: no batch lands behind the writer's last one."""

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Start the writer (and forwarder) threads and serve HTTP in the background."""
        targets: list[Callable[[], None]] = [
            self._write_loop,
            self._checkpoint_loop,
            self._server.serve_forever,
        ]
        if self.config.forward_url:
            targets.append(self._forward_loop)
        for target in targets:
            thread = threading.Thread(target=target, name=f"memlens-{target.__name__}")
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop serving, commit what is queued, and join the threads."""
        self._server.shutdown()
        self._server.server_close()
        with self._accepting:  # a handler still reading a body gets 503 from now on
            self._stopped.set()
            self._queue.put(None)
        if self.config.forward_url:
            self._forward.put(None)
        for thread in self._threads:
            thread.join()

    # -- called by the HTTP handler -----------------------------------------------------

    def ingest(self, batch: _Batch) -> bool:
        """Queue a batch for the writer and wait until it is committed. False: queue full
        or the collector stopping."""
        with self._accepting:
            if self._stopped.is_set():
                return False
            try:
                self._queue.put_nowait(batch)
            except queue.Full:
                return False
        batch.done.wait()
        if batch.error is not None:
            raise batch.error
        if batch.forward is not None and batch.forward_url is not None:
            try:
                self._forward.put_nowait((batch.forward_url, batch.forward))
            except queue.Full:
                _log.warning("forward queue full; dropping a request for %s", batch.forward_url)
        return True

    # -- threads --------------------------------------------------------------------------

    def _write_loop(self) -> None:
        store = TraceStore(self.config.db_path, auto_checkpoint=False)
        last_retention = time.monotonic()
        stopping = False
        try:
            while not stopping:
                item = self._queue.get()
                if item is None:
                    break
                batches: list[_Batch] = []
                size = 0
                while True:
                    try:
                        item.decode(item)
                        batches.append(item)
                        size += len(item.spans)
                    except Exception as exc:  # the handler answers 400 (BadPayloadError) or 500
                        item.error = exc
                        item.done.set()
                    if size >= self.config.batch_spans:
                        break
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stopping = True
                        break
                self._commit(store, batches)
                self._written.set()
                if time.monotonic() - last_retention > self.config.retention_every_s:
                    try:
                        store.retain(
                            max_age_s=self.config.retention_max_age_s,
                            max_spans=self.config.retention_max_spans,
                            max_samples=self.config.retention_max_samples,
                        )
                    except Exception:  # a failed clean-up must not stop ingest
                        _log.exception("applying retention failed")
                    last_retention = time.monotonic()
        finally:
            store.close()

    def _commit(self, store: TraceStore, batches: list[_Batch]) -> None:
        """Store the batches together, else (the database refused something: a number past
        SQLite's 64-bit integers, a full disk) each on its own, so that a request that
        cannot be stored fails alone (its handler answers 500) and the others are kept;
        then wake their handlers."""
        try:
            _write(store, batches)
        except Exception:
            for batch in batches:
                try:
                    _write(store, [batch])
                except Exception as exc:
                    batch.error = exc
        for batch in batches:
            batch.done.set()

    def _checkpoint_loop(self) -> None:
        store = TraceStore(self.config.db_path)
        try:
            # the last connection to close (the writer's, usually) checkpoints what is left
            while not self._stopped.wait(self.config.checkpoint_every_s):
                if self._written.is_set():
                    self._written.clear()
                    self._checkpoint(store)
        finally:
            store.close()

    def _checkpoint(self, store: TraceStore) -> None:
        try:
            if store.checkpoint() > self.config.checkpoint_truncate_pages:
                store.checkpoint(truncate=True)
        except Exception:  # the writer goes on; the log just grows until the next one
            _log.exception("checkpointing the trace store failed")

    def _forward_loop(self) -> None:
        while (item := self._forward.get()) is not None:
            url, body = item
            delay = 0.5
            for attempt in range(1, self.config.forward_retries + 1):
                request = urllib.request.Request(
                    url, data=body, method="POST", headers={"Content-Type": PROTOBUF}
                )
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:
                        response.read()
                    break
                except urllib.error.HTTPError as exc:
                    if exc.code not in (429, 502, 503, 504):
                        self._refused(url, exc.code)
                        break
                    reason = f"HTTP {exc.code}"
                except OSError as exc:
                    reason = str(exc)
                if attempt == self.config.forward_retries:
                    _log.warning(
                        "gave up on a request after %d tries to %s: %s", attempt, url, reason
                    )
                else:
                    time.sleep(delay)  # backoff between retries, not synchronisation
                    delay *= 2

    def _refused(self, url: str, status: int) -> None:
        """Log a refusal as a warning the first time (an upstream that takes no metrics, a
        Jaeger, refuses every one of them), then at debug level."""
        level = logging.DEBUG if (url, status) in self._refusals else logging.WARNING
        self._refusals.add((url, status))
        _log.log(level, "upstream %s refused a request: HTTP %d", url, status)


def _write(store: TraceStore, batches: list[_Batch]) -> None:
    """The spans, then the memory samples, of some batches: a transaction each. Spans are
    replaced by id, so writing them again after a failed sample write stores each once."""
    spans = [row for batch in batches for row in batch.spans]
    if spans:
        store.insert_rows(spans)
    samples = [sample for batch in batches for sample in batch.samples]
    if samples:
        store.insert_samples(samples)


class _Refused(Exception):
    """A request the collector answers with an HTTP error status; ``str()`` is the message."""

    def __init__(self, status: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.close = close
        """Whether to close the connection (the rest of the body is not read)."""


def _request_body(headers: Message, rfile: BufferedIOBase, max_bytes: int) -> bytes:
    """The body as sent: a Content-Length within ``max_bytes``, and that many bytes read."""
    length_header = headers.get("Content-Length")
    if length_header is None or not length_header.isdigit():
        raise _Refused(411, "Content-Length is required", close=True)
    length = int(length_header)
    if length > max_bytes:
        raise _Refused(413, f"body of {length} bytes is over {max_bytes}", close=True)
    body = rfile.read(length)
    if len(body) != length:
        raise _Refused(400, "body is shorter than Content-Length", close=True)
    return body


def _decoded_body(body: bytes, content_type: str, encoding: str, max_bytes: int) -> bytes:
    """The body to decode: of an OTLP content type, gunzipped (to at most ``max_bytes``)
    when its content encoding is gzip."""
    if content_type not in (PROTOBUF, JSON):
        raise _Refused(415, f"content type {content_type!r}: send {PROTOBUF} or {JSON}")
    if encoding == "identity":
        return body
    if encoding != "gzip":
        raise _Refused(415, f"content encoding {encoding!r}: use gzip")
    try:
        return gunzip_bounded(body, max_bytes)
    except PayloadTooLargeError as exc:
        raise _Refused(413, str(exc)) from exc
    except BadPayloadError as exc:
        raise _Refused(400, str(exc)) from exc


class _OtlpServer(ThreadingHTTPServer):
    """The collector's HTTP server; its handlers reach the collector through it."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], collector: Collector) -> None:
        super().__init__(address, _OtlpRequestHandler)
        self.collector = collector


class _OtlpRequestHandler(BaseHTTPRequestHandler):
    """Answers one connection's requests: OTLP posts, and ``GET /health``."""

    protocol_version = "HTTP/1.1"
    server_version = "memlens-collector"
    server: _OtlpServer

    def log_message(self, format: str, *args: object) -> None:
        _log.debug("%s " + format, self.address_string(), *args)

    def _reply(self, code: int, body: bytes, content_type: str, close: bool = False) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if code == 503:
            self.send_header("Retry-After", "1")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _error(self, code: int, message: str, content_type: str, close: bool = False) -> None:
        # OTLP: the error body is a google.rpc.Status in the request's encoding
        status = Status(code=3 if code == 400 else 8, message=message)
        if content_type == PROTOBUF:
            self._reply(code, status.SerializeToString(), PROTOBUF, close)
        else:
            body = json.dumps({"code": status.code, "message": message}).encode()
            self._reply(code, body, JSON, close)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._reply(200, b'{"status":"ok"}', JSON)
        else:
            self._error(404, "only POST /v1/traces and /v1/metrics are served", JSON)

    def do_POST(self) -> None:
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        reply_type = content_type if content_type in (PROTOBUF, JSON) else JSON
        try:
            self._ingest(content_type)
        except _Refused as refused:
            self._error(refused.status, str(refused), reply_type, refused.close)
            return
        self._reply(200, encode_response(content_type), content_type)

    def _ingest(self, content_type: str) -> None:
        """Read, check and store the request's body; _Refused when it is not stored."""
        collector = self.server.collector
        config = collector.config
        path = self.path.split("?")[0]
        decode = _ENDPOINTS.get(path)
        if decode is None:
            raise _Refused(404, f"no OTLP endpoint at {self.path}; use /v1/traces or /v1/metrics")
        body = _request_body(self.headers, self.rfile, config.max_body_bytes)
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        body = _decoded_body(body, content_type, encoding, config.max_body_bytes)
        batch = _Batch(decode, body, content_type, collector.forward_urls.get(path))
        try:
            accepted = collector.ingest(batch)
        except BadPayloadError as exc:
            raise _Refused(400, str(exc)) from exc
        except Exception as exc:
            _log.exception("writing to the trace store failed")
            raise _Refused(500, f"writing to the trace store failed: {exc}") from exc
        if not accepted:
            raise _Refused(503, "collector is busy or stopping; retry")
