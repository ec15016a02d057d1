"""The platform's function contract in Python, standard library only: the same contract as the
Node kit (packages/function-contract/src), so a Python function runs on every runtime.

A function's main module calls ``serve_function(handler)``. The platform picks the mode with
FN_MODE: one-shot (an invocation as JSON on stdin, its response as JSON on stdout; or, with
FN_INVOCATION_URL, fetched from and posted back to that URL) or warm (an HTTP server: ``POST
/_/invoke`` runs a call, ``GET /_/health`` answers once set up; SIGTERM drains the calls in
flight, then exits 0).

An invocation is ``{"callId": str, "request": {"method", "path", "query", "headers", "body"}}``;
a response is ``{"status": int, "headers": {...}, "body": str}``.
"""

import json
import os
import signal
import socket
import socketserver
import sys
import threading
import time
import traceback
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INSTANCE_HEADER = "x-fn-instance"
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


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = BACKLOG

    def get_request(self):
        request, _ = super().get_request()
        return request, ("local", 0)


class _TcpHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = BACKLOG


def run_warm(definition, settings):
    log = Logger(settings)
    base = Context(settings, log)
    lock = threading.Lock()
    state = {"in_flight": 0, "ready": False, "draining": False, "last_call": time.monotonic(), "last_request": 0.0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Buffered: each answer goes out in one write when the request is done, headers and body together.
        wbufsize = 64 * 1024

        def log_message(self, *args):
            pass

        def send(self, status, value, close=False):
            body = json.dumps(value).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            if close:
                self.send_header("connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path != "/_/health":
                return self.send(404, {"error": "not found"})
            healthy = state["ready"] and not state["draining"]
            self.send(200 if healthy else 503, {"ready": state["ready"], "draining": state["draining"], "inFlight": state["in_flight"]})

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.path != "/_/invoke":
                return self.send(404, {"error": "not found"})
            state["last_request"] = time.monotonic()
            meant = self.headers.get(INSTANCE_HEADER)
            if meant is not None and meant != settings.instance:
                return self.send(421, {"error": f"this address serves instance {settings.instance} of {settings.name}, not {meant}"})
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

    if settings.socket:
        if os.path.exists(settings.socket):
            os.unlink(settings.socket)  # a stale socket of a crashed instance
        server = _UnixHTTPServer(settings.socket, Handler)
        where = {"socket": settings.socket}
    else:
        server = _TcpHTTPServer((settings.host, settings.port), Handler)
        where = {"port": server.server_address[1]}

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
    server.serve_forever(poll_interval=0.05)
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
