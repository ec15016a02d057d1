"""The platform's function contract in Python, standard library only: the same contract as the
Node kit (packages/function-contract/src), so a Python function runs on every runtime.

A function's main module calls ``serve_function(handler)``. The platform picks the mode with
FN_MODE: one-shot (an invocation as JSON on stdin, its response as JSON on stdout; or, with
FN_INVOCATION_URL, fetched from and posted back to that URL) or warm (an HTTP server: ``POST
/_/invoke`` runs a call carrying the instance's credential, ``GET /_/health`` answers once set up;
SIGTERM drains the calls in flight, then exits 0).

An invocation is ``{"callId": str, "request": {"method", "path", "query", "headers", "body"}}``;
a response is ``{"status": int, "headers": {...}, "body": str}``.
"""

import hmac
import json
import os
import queue
import re
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler

# The names and limits of the Node kit's types.ts, mirrored.
INSTANCE_HEADER = "x-fn-instance"
INVOKE_TOKEN_ENV = "FN_INVOKE_TOKEN"
INVOKE_TOKEN_HEADER = "x-fn-invoke-token"
MAX_INVOCATION_BYTES = 8 * 1024 * 1024
# A stopping instance exits only once no call has arrived for this long.
QUIET_SECONDS = 0.3
LEVELS = {"debug": 20, "info": 30, "warn": 40, "error": 50}


class HttpError(Exception):
    """Raise from a handler to answer with a 4xx/5xx and a message."""

    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def json_response(status, value, headers=None):
    """A JSON response."""
    return {
        "status": status,
        "headers": {"content-type": "application/json; charset=utf-8", **(headers or {})},
        "body": json.dumps(value, separators=(",", ":")),
    }


def error_response(status, message, headers=None):
    """A JSON error {"error": message}: the one error shape of every function."""
    return json_response(status, {"error": message}, headers)


class Settings:
    """What the platform hands a function process, all through its environment."""

    def __init__(self, env):
        names = lambda value: [n for n in (value or "").split(",") if n]
        self.name = env.get("FN_NAME", "function")
        self.mode = "warm" if env.get("FN_MODE") == "warm" else "oneshot"
        self.instance = env.get("FN_INSTANCE") or f"{socket.gethostname()}-{os.getpid()}"
        self.port = int(env.get("PORT", "8080"))
        self.socket = env.get("FN_SOCKET") or None
        self.host = env.get("FN_HOST", "0.0.0.0")
        self.max_in_flight = int(env.get("FN_MAX_INFLIGHT", "64"))
        self.invoke_token = env.get(INVOKE_TOKEN_ENV) or None
        self.idle_seconds = float(env.get("FN_IDLE_SECONDS", "0"))
        self.drain_seconds = float(env.get("FN_DRAIN_SECONDS", "10"))
        self.env = {key: env.get(key, "") for key in names(env.get("FN_ENV"))}
        self.secret_names = names(env.get("FN_SECRETS"))
        self.secrets_dir = env.get("SECRETS_DIR", "/run/secrets")
        self.invocation_url = env.get("FN_INVOCATION_URL") or None
        self.level = LEVELS.get(env.get("LOG_LEVEL", "info"), 30)


class Logger:
    """JSON lines on stderr, as the Node kit's (pino's levels and fields). A write to a stderr
    nobody reads any more (the platform died) is dropped, never retried: the process must exit."""

    def __init__(self, settings, bindings=None):
        self._settings = settings
        self._bindings = bindings or {}

    def child(self, **bindings):
        return Logger(self._settings, {**self._bindings, **bindings})

    def _write(self, level, msg, fields):
        if LEVELS[level] < self._settings.level:
            return
        line = {"level": LEVELS[level], "time": int(time.time() * 1000), "pid": os.getpid(), "name": self._settings.name}
        line.update({"instance": self._settings.instance, **self._bindings, **fields, "msg": msg})
        try:
            os.write(2, (json.dumps(line, default=str) + "\n").encode())
        except OSError:
            pass

    def debug(self, msg, **fields):
        self._write("debug", msg, fields)

    def info(self, msg, **fields):
        self._write("info", msg, fields)

    def warn(self, msg, **fields):
        self._write("warn", msg, fields)

    def error(self, msg, **fields):
        self._write("error", msg, fields)


class Context:
    """What a handler gets beside the request: its call, its instance, logs, settings, secrets."""

    def __init__(self, settings, log, call_id=None):
        self.instance = settings.instance
        self.env = settings.env
        self.log = log
        self.call_id = call_id
        self._settings = settings
        self._secrets = {}

    def secret(self, name):
        """The secret `name` from the file SECRETS_DIR/name, else from $NAME (dashes as underscores)."""
        if name not in self._settings.secret_names:
            raise ValueError(f'secret "{name}" is not declared in the function\'s manifest')
        if name not in self._secrets:
            path = os.path.join(self._settings.secrets_dir, name)
            variable = name.upper().replace("-", "_")
            value = open(path, encoding="utf-8").read().strip() if os.path.exists(path) else os.environ.get(variable, "")
            if not value:
                raise ValueError(f'secret "{name}" is not set (no file {path}, no ${variable})')
            self._secrets[name] = value
        return self._secrets[name]

    def for_call(self, call_id):
        context = Context(self._settings, self.log.child(callId=call_id), call_id)
        context._secrets = self._secrets
        return context


def parse_invocation(text):
    """The invocation read from stdin or HTTP, its shape checked."""
    value = json.loads(text)
    request = value.get("request") if isinstance(value, dict) else None
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("callId"), str)
        or not isinstance(request, dict)
        or not isinstance(request.get("method"), str)
        or not isinstance(request.get("path"), str)
        or not isinstance(request.get("body"), str)
        or not isinstance(request.get("headers"), dict)
        or not isinstance(request.get("query"), dict)
    ):
        raise ValueError('invocation must be {"callId": string, "request": {method, path, query, headers, body}}')
    return value


def run_handler(definition, invocation, base):
    """Runs the handler for one invocation; an exception becomes a JSON error response, never a crash."""
    context = base.for_call(invocation["callId"])
    try:
        response = definition["handler"](invocation["request"], context)
        return {"status": response["status"], "headers": response.get("headers") or {}, "body": response.get("body") or ""}
    except HttpError as error:
        return error_response(error.status, error.message, error.headers)
    except Exception as error:
        context.log.error("handler failed", err={"type": type(error).__name__, "message": str(error), "stack": traceback.format_exc()})
        return error_response(500, "the function failed; see its logs")


def run_one_shot(definition, settings):
    log = Logger(settings)
    url = settings.invocation_url
    try:
        if url:
            with urllib.request.urlopen(url, timeout=10) as answer:
                text = answer.read().decode()
        else:
            text = sys.stdin.buffer.read().decode()
        invocation = parse_invocation(text)
    except Exception as error:
        where = url.rsplit("/", 1)[0] + "/…" if url else "stdin"
        sys.stderr.write(f"bad invocation on {where}: {error}\n")
        return 2
    base = Context(settings, log)
    if definition.get("setup"):
        definition["setup"](base)
    try:
        response = run_handler(definition, invocation, base)
        body = json.dumps(response).encode()
        if url:
            post = urllib.request.Request(url, data=body, method="POST", headers={"content-type": "application/json"})
            with urllib.request.urlopen(post, timeout=10):
                pass
        else:
            sys.stdout.buffer.write(body)
            sys.stdout.flush()
    finally:
        if definition.get("teardown"):
            definition["teardown"]()
    return 0


# A burst of calls on a fresh instance waits in the kernel's queue instead of being refused (the
# standard library's servers queue 5 connections: a sixth at once gets EAGAIN or a reset).
BACKLOG = socket.SOMAXCONN
# Threads beyond the in-flight limit: health checks and refusals (429, 421, 401) are answered while
# every call slot is busy.
SPARE_WORKERS = 4
# A kept-alive connection with no request for this long is closed (as the Node kit's keepAliveTimeout).
KEEP_ALIVE_SECONDS = 65
# The longest wait for the next bytes of a request being read: a stalled sender frees its thread.
READ_TIMEOUT_SECONDS = 30
# How long what a refused caller still sends is read and dropped before its connection closes.
LINGER_SECONDS = 2
# The longest chunk-size or trailer line, and the most trailer lines, of a chunked body.
MAX_LINE = 1024
MAX_TRAILERS = 64
_DIGITS = re.compile(r"[0-9]+")
_HEX = re.compile(rb"[0-9A-Fa-f]+")


class BadBody(Exception):
    """A request body that cannot be read as sent: answered with `status`, the connection closed."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def _too_large():
    return BadBody(413, f"an invocation is at most {MAX_INVOCATION_BYTES} bytes")


def read_body(headers, rfile):
    """The request's body, by its Content-Length or chunked, at most MAX_INVOCATION_BYTES; never
    more is read or kept. Two framings at once, or a length that is not a number, are refused:
    either could make this server and a proxy before it read different requests."""
    lengths = headers.get_all("content-length") or []
    encoding = headers.get_all("transfer-encoding") or []
    if encoding:
        if lengths:
            raise BadBody(400, "a request has Content-Length or Transfer-Encoding, not both")
        if len(encoding) > 1 or encoding[0].strip().lower() != "chunked":
            raise BadBody(501, f"transfer-encoding {', '.join(encoding)} is not supported (only chunked)")
        return _read_chunked(rfile)
    if not lengths:
        return b""
    if len(lengths) > 1 or not _DIGITS.fullmatch(lengths[0].strip()):
        raise BadBody(400, f"content-length must be one non-negative integer, not {', '.join(lengths)[:40]!r}")
    digits = lengths[0].strip().lstrip("0") or "0"
    # By its digits first: int() refuses a number of thousands of them.
    if len(digits) > len(str(MAX_INVOCATION_BYTES)) or int(digits) > MAX_INVOCATION_BYTES:
        raise _too_large()
    length = int(digits)
    body = rfile.read(length)
    if len(body) < length:
        raise BadBody(400, "the body ended before its content-length")
    return body


def _read_chunked(rfile):
    chunks, size = [], 0
    while True:
        line = rfile.readline(MAX_LINE + 1)
        if not line.endswith(b"\n"):
            raise BadBody(400, "a chunk's size line is cut off or too long")
        digits = line.split(b";", 1)[0].strip()
        if not _HEX.fullmatch(digits):
            raise BadBody(400, "a chunk's size is not a hexadecimal number")
        length = int(digits, 16)
        if length == 0:
            break
        size += length
        if size > MAX_INVOCATION_BYTES:
            raise _too_large()
        chunk = rfile.read(length)
        if len(chunk) < length or rfile.readline(3) not in (b"\r\n", b"\n"):
            raise BadBody(400, "a chunk is cut off or longer than its size")
        chunks.append(chunk)
    for _ in range(MAX_TRAILERS):
        line = rfile.readline(MAX_LINE + 1)
        if line in (b"\r\n", b"\n"):
            return b"".join(chunks)
        if not line.endswith(b"\n"):
            raise BadBody(400, "a chunked body's trailer is cut off or too long")
    raise BadBody(400, f"a chunked body has more than {MAX_TRAILERS} trailer lines")


class _Connection(BaseHTTPRequestHandler):
    """One client connection, served one request at a time by _PooledServer's threads."""

    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT_SECONDS
    # Buffered: each answer goes out in one write when the request is done, headers and body together.
    wbufsize = 64 * 1024

    def __init__(self, sock, address, server):
        # Not BaseRequestHandler's __init__, which serves the connection to its end in one thread.
        self.request = sock
        self.client_address = address
        self.server = server
        self.setup()

    def log_message(self, *args):
        pass

    def has_buffered_request(self):
        """Whether bytes of a next request are already here (read with the last one), without waiting."""
        self.connection.setblocking(False)
        try:
            return bool(self.rfile.peek(1))
        except OSError:
            return False
        finally:
            self.connection.settimeout(self.timeout)

    # Set when an answer goes out before the request was read whole.
    linger = False

    def close(self):
        try:
            self.finish()
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_WR)
            if self.linger:
                self._drop_rest()
        except OSError:
            pass
        self.connection.close()

    def _drop_rest(self):
        """A connection closed with bytes of the caller unread is reset, and the caller may lose
        the answer: what it still sends is read and dropped (kept nowhere) for LINGER_SECONDS, or
        until it closes."""
        deadline = time.monotonic() + LINGER_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            self.connection.settimeout(left)
            if not self.connection.recv(65536):
                return


class _PooledServer:
    """Serves HTTP with a fixed number of threads. One thread accepts connections (backlog
    SOMAXCONN) and watches the idle ones; a request, once its first bytes arrive, is served by one
    of `workers` threads. A kept-alive connection between calls holds no thread: more connections
    than threads all get answered, and no number of connections makes more threads."""

    def __init__(self, listener, handler_class, workers):
        self.listener = listener
        self._handler_class = handler_class
        self._workers = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fn-call")
        self._selector = selectors.DefaultSelector()
        self._returned = queue.SimpleQueue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._idle = {}
        self._stopping = False

    def serve_forever(self):
        for sock in (self.listener, self._wake_r, self._wake_w):
            sock.setblocking(False)
        self._selector.register(self.listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        while not self._stopping:
            for key, _ in self._selector.select(timeout=1):
                if key.data == "accept":
                    self._accept()
                elif key.data == "wake":
                    self._take_back()
                else:
                    self._dispatch(key.data)
            self._close_idle()

    def shutdown(self):
        self._stopping = True
        self._wake()

    def server_close(self):
        self._selector.close()
        self.listener.close()
        for connection in list(self._idle):
            connection.close()
        self._workers.shutdown(wait=False)

    def _accept(self):
        while True:
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # Out of descriptors, say: those waiting stay in the backlog until some close.
                time.sleep(0.05)
                return
            connection = self._handler_class(sock, address if isinstance(address, tuple) else ("local", 0), self)
            self._watch(connection)

    def _watch(self, connection):
        self._selector.register(connection.connection, selectors.EVENT_READ, connection)
        self._idle[connection] = time.monotonic()

    def _dispatch(self, connection):
        self._selector.unregister(connection.connection)
        del self._idle[connection]
        self._workers.submit(self._serve, connection)

    def _serve(self, connection):
        """Requests of one connection while they come at once; then it goes back to be watched."""
        try:
            while True:
                connection.handle_one_request()
                if connection.close_connection:
                    break
                if not connection.has_buffered_request():
                    self._returned.put(connection)
                    self._wake()
                    return
        except Exception:
            pass  # a reset or timed-out connection: nothing to answer on it
        connection.close()

    def _wake(self):
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass  # a wake-up is already pending

    def _take_back(self):
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass
        while True:
            try:
                connection = self._returned.get_nowait()
            except queue.Empty:
                return
            if self._stopping:
                connection.close()
            else:
                self._watch(connection)

    def _close_idle(self):
        limit = time.monotonic() - KEEP_ALIVE_SECONDS
        for connection in [c for c, since in self._idle.items() if since < limit]:
            self._selector.unregister(connection.connection)
            del self._idle[connection]
            connection.close()


def _listen(settings):
    if settings.socket:
        if os.path.exists(settings.socket):
            os.unlink(settings.socket)  # a stale socket of a crashed instance
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(settings.socket)
        listener.listen(BACKLOG)
        return listener, {"socket": settings.socket}
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    listener = socket.create_server((settings.host, settings.port), family=family, backlog=BACKLOG)
    return listener, {"port": listener.getsockname()[1]}


def _bytes(text):
    return text.encode("utf-8", "surrogateescape")


def run_warm(definition, settings):
    if not settings.invoke_token:
        raise RuntimeError(f"{INVOKE_TOKEN_ENV} is not set: a warm instance runs only calls carrying the credential its platform gave it")
    token = _bytes(settings.invoke_token)
    log = Logger(settings)
    base = Context(settings, log)
    lock = threading.Lock()
    state = {"in_flight": 0, "ready": False, "draining": False, "last_call": time.monotonic(), "last_request": 0.0}

    class Handler(_Connection):
        def send(self, status, value, close=False):
            body = json.dumps(value).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            if close:
                self.send_header("connection", "close")
                self.close_connection = True
                self.linger = True
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            # A body on a GET is not read: the connection cannot serve another request after it.
            framed = self.headers.get("content-length") not in (None, "0") or self.headers.get("transfer-encoding") is not None
            if self.path != "/_/health":
                return self.send(404, {"error": "not found"}, close=framed)
            healthy = state["ready"] and not state["draining"]
            self.send(200 if healthy else 503, {"ready": state["ready"], "draining": state["draining"], "inFlight": state["in_flight"]}, close=framed)

        def do_POST(self):
            # Answers before the body is read close the connection: what is left of it is never read.
            if self.path != "/_/invoke":
                return self.send(404, {"error": "not found"}, close=True)
            meant = self.headers.get(INSTANCE_HEADER)
            # Before the credential: another instance's caller holds that one's, and must learn to go elsewhere.
            if meant is not None and meant != settings.instance:
                state["last_request"] = time.monotonic()
                return self.send(421, {"error": f"this address serves instance {settings.instance} of {settings.name}, not {meant}"}, close=True)
            given = self.headers.get(INVOKE_TOKEN_HEADER)
            # Constant time: how long it takes tells nothing of where a guess first differs.
            if given is None or not hmac.compare_digest(_bytes(given), token):
                return self.send(401, {"error": f"calls to this instance need its credential ({INVOKE_TOKEN_HEADER})"}, close=True)
            state["last_request"] = time.monotonic()
            try:
                body = read_body(self.headers, self.rfile)
            except BadBody as error:
                return self.send(error.status, {"error": error.message}, close=True)
            if state["draining"]:
                return self.send(503, {"error": "instance is stopping"}, close=True)
            with lock:
                if state["in_flight"] >= settings.max_in_flight:
                    return self.send(429, {"error": "instance busy"})
                state["in_flight"] += 1
                state["last_call"] = time.monotonic()
            try:
                try:
                    invocation = parse_invocation(body.decode())
                except Exception as error:
                    return self.send(400, {"error": str(error)})
                self.send(200, run_handler(definition, invocation, base))
            finally:
                with lock:
                    state["in_flight"] -= 1
                    state["last_call"] = time.monotonic()

    listener, where = _listen(settings)
    server = _PooledServer(listener, Handler, settings.max_in_flight + SPARE_WORKERS)

    def drain_then_shut(reason):
        log.info("stopping", reason=reason, inFlight=state["in_flight"])
        deadline = time.monotonic() + settings.drain_seconds
        # Also until callers have stopped sending (each got its 503): a call arriving as the
        # process exits would meet a reset connection.
        while (state["in_flight"] > 0 or time.monotonic() - state["last_request"] < QUIET_SECONDS) and time.monotonic() < deadline:
            time.sleep(0.01)
        if state["in_flight"] > 0:
            log.warn("calls still running at the drain deadline", inFlight=state["in_flight"])
        server.shutdown()

    def stop(reason):
        with lock:
            if state["draining"]:
                return
            state["draining"] = True
        threading.Thread(target=drain_then_shut, args=(reason,), daemon=True).start()

    signal.signal(signal.SIGTERM, lambda *_: stop("SIGTERM"))
    signal.signal(signal.SIGINT, lambda *_: stop("SIGINT"))
    if os.environ.get("FN_EXIT_WITH_PARENT") == "1":
        # Started by a local platform with a pipe on stdin: the pipe closing means the platform is gone.
        def watch_stdin():
            # The raw descriptor, not sys.stdin: a thread blocked in a buffered read stops the
            # interpreter from shutting down.
            while os.read(0, 65536):
                pass
            stop("platform went away")

        threading.Thread(target=watch_stdin, daemon=True).start()
    if settings.idle_seconds > 0:
        # A safety net only: the platform normally stops idle instances itself.
        def watch_idle():
            while not state["draining"]:
                time.sleep(1)
                if state["in_flight"] == 0 and time.monotonic() - state["last_call"] > settings.idle_seconds:
                    stop("idle")

        threading.Thread(target=watch_idle, daemon=True).start()

    if definition.get("setup"):
        definition["setup"](base)
    state["ready"] = True
    log.info("ready", **where)
    _tell_node_parent({"ready": True, **where})
    server.serve_forever()
    server.server_close()
    if settings.socket and os.path.exists(settings.socket):
        os.unlink(settings.socket)
    if definition.get("teardown"):
        definition["teardown"]()
    # At once: the watcher threads may be blocked in reads that nothing will end.
    sys.stdout.flush()
    os._exit(0)


def _tell_node_parent(message):
    """A local platform that started this process with a Node IPC channel hears it at once (one JSON line)."""
    fd = os.environ.get("NODE_CHANNEL_FD")
    if fd is None:
        return
    try:
        os.write(int(fd), (json.dumps(message) + "\n").encode())
    except OSError:
        pass


def serve_function(handler, setup=None, teardown=None):
    """The entry point of every Python function: its main module calls serve_function(handler)."""
    definition = {"handler": handler, "setup": setup, "teardown": teardown}
    settings = Settings(os.environ)
    try:
        code = run_warm(definition, settings) if settings.mode == "warm" else run_one_shot(definition, settings)
    except Exception:
        sys.stderr.write(f"function {settings.name} failed to run: {traceback.format_exc()}\n")
        code = 1
    sys.exit(code)
