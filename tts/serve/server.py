"""Running the application: uvicorn on a socket bound up front, in the foreground or in a thread."""

from __future__ import annotations

import errno
import logging
import socket
import sys
import threading
from pathlib import Path

import uvicorn
from fastapi import FastAPI

log = logging.getLogger("tts.serve")


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free one).

    Raises:
        OSError: with a message naming the address and what to do (port taken, bad host).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise OSError(f"cannot listen on {host}:{port}: unknown host ({err.strerror})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        sock.close()
        hint = " (another server is running there: pick another --port)" if err.errno == errno.EADDRINUSE else ""
        raise OSError(f"cannot listen on {host}:{port}: {err.strerror}{hint}") from None
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def _uvicorn(app: FastAPI) -> uvicorn.Server:
    # Our own middleware logs each request with its latency; uvicorn's access log would repeat it.
    config = uvicorn.Config(app, access_log=False, log_config=None, lifespan="on", timeout_graceful_shutdown=5)
    return uvicorn.Server(config)


def serve_forever(app: FastAPI, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` until SIGINT / SIGTERM (uvicorn stops gracefully)."""
    _uvicorn(app).run(sockets=[sock])


class ServerThread:
    """Serve an application in a background thread (tests, embedding): ``with ServerThread(app) as url: ...``.

    Args:
        app: the ASGI application.
        host: interface (localhost).
        port: 0 picks a free port.
    """

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sock = bind(host, port)
        self.url = url_of(self.sock)
        self.server = _uvicorn(app)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True,
                                        name="hylac-serve")

    def __enter__(self) -> str:
        self._thread.start()
        while not self.server.started:  # uvicorn sets it once the socket is served
            if not self._thread.is_alive():
                raise RuntimeError("the server thread stopped while starting (see its log)")
            self._thread.join(0.01)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(30)
        self.sock.close()


def setup_logging(level: int) -> None:
    """One line per event on stderr for the server's and uvicorn's loggers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s hylac-tts serve: %(message)s", "%H:%M:%S"))
    logging.captureWarnings(True)  # e.g. "generation stopped at the length limit", from worker threads
    for name in ("tts.serve", "uvicorn", "uvicorn.error", "py.warnings"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


def model_name(model: str) -> str:
    """The name clients send as ``model``: a shipped model's name, or a model folder's name."""
    return Path(model).name or str(model)
