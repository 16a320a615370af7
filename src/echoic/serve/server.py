"""``echoic serve``: open the index, build the app, run it under uvicorn (one process)."""

from __future__ import annotations

import logging
import socket
import time

from echoic.errors import ConfigError
from echoic.serve.explorer import Explorer, ExplorerConfig

log = logging.getLogger("echoic.serve")


def require_server_stack() -> None:
    """Starlette and uvicorn (the ``serve`` extra), or an error saying how to install them."""
    missing = []
    for name in ("starlette", "uvicorn"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ConfigError(
            f"echoic serve needs {' and '.join(missing)}, which did not import; install the "
            "explorer's extra: pip install 'echoic[serve]'"
        )


def exposure_warning(host: str) -> str | None:
    """The warning for a bind beyond this machine (``None`` for a loopback address)."""
    from echoic.serve.app import is_loopback

    if is_loopback(host):
        return None
    return (
        f"echoic serve is listening on {host}, not only on this machine (127.0.0.1): anyone who "
        "can reach it can list the indexed files, play them and upload audio to search. The "
        "explorer has no login; bind 127.0.0.1 (the default) unless the network is trusted"
    )


def run_server(config: ExplorerConfig) -> None:
    """Open ``config.index`` and serve the explorer until interrupted."""
    require_server_stack()
    import uvicorn

    from echoic.serve.app import create_app

    start = time.perf_counter()
    if not log.handlers:  # the explorer's own warnings (refused files, uploads off) on stderr
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("echoic serve: %(levelname)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    if (warning := exposure_warning(config.host)) is not None:
        log.warning(warning)
    explorer = Explorer(config)
    app = create_app(explorer)
    m = explorer.map
    print(
        f"echoic serve: {len(explorer)} {explorer.index.meta.level} rows of "
        f"{explorer.index.meta.model.label} ({explorer.index.meta.kind}); map: {m.method} of "
        f"{len(m.ids)} points ({'cached' if m.cached else f'computed in {m.seconds:.1f} s'}); "
        f"uploads: {'on' if explorer.model() is not None else 'off (' + str(explorer.model_error) + ')'}"
    )
    if m.note:
        print(f"echoic serve: {m.note}")
    sock = bind(config.host, config.port)
    port = sock.getsockname()[1]
    shown = f"[{config.host}]" if ":" in config.host else config.host
    print(
        f"echoic serve: ready in {time.perf_counter() - start:.1f} s at "
        f"http://{shown}:{port}/ (Ctrl-C stops it)",
        flush=True,
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one), or an error saying what to do."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # asyncio sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port} ({err.strerror}); pick another --port (0: any free "
            "one) or stop what uses it"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock
