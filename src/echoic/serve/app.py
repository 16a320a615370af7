"""The explorer's web app (Starlette): a page, its two static files, and a small JSON API.

=========================  ======  ==============================================================
route                      method  answer
=========================  ======  ==============================================================
``/``                      GET     the page (``static/index.html``)
``/static/{app.js,         GET     the page's script and style: a fixed list, read from the
style.css}``                       package at start (no file name from the client reaches disk)
``/api/health``            GET     ``{"status": "ok", "count": N}``
``/api/info``              GET     the index: model, count, level, metric, upload limits
``/api/map``               GET     the 2-D map: ids, x, y, and per colouring scheme the codes
``/api/neighbours/{id}``   GET     ``?k=``: the row and its k nearest rows (itself left out)
``/api/audio/{id}``        GET     the row's audio file (ranges supported), only an indexed file
``/api/thumbnail/{id}``    GET     PNG waveform + spectrogram of the row's audio
``/api/query``             POST    ``?k=&name=``: the body is an audio file; its k nearest rows
=========================  ======  ==============================================================

An id is decimal digits; anything else, an id out of range, a file gone or outside the
collection → 404 (``{"error": ...}``). An upload over ``max_bytes`` → 413 before or while it is
read; one that does not decode → 422; one too long → 413; decoding happens in a child process
(:mod:`echoic.serve.decode`). Every answer carries ``Content-Security-Policy: default-src
'self'`` (the page loads nothing from elsewhere) and ``X-Content-Type-Options: nosniff``; the
``Host`` header must be one of ``allowed_hosts`` (loopback names by default), which stops DNS
rebinding from reaching a server bound to 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from echoic.serve.decode import DecodeError
from echoic.serve.explorer import Explorer

STATIC = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
AUDIO_TYPES = {
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".mp4": "audio/mp4",
    ".aac": "audio/aac",
    ".webm": "audio/webm",
    ".mka": "audio/x-matroska",
    ".aiff": "audio/aiff",
    ".aif": "audio/aiff",
    ".au": "audio/basic",
}
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self'; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
}
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, given: list[str] | None) -> list[str]:
    """The ``Host`` headers to accept: ``given``, else loopback names (plus ``host``) for a
    loopback bind, and any host when bound elsewhere (its users reach it by name or address)."""
    if given is not None:
        return given
    return sorted({*LOOPBACK_HOSTS, host}) if is_loopback(host) else ["*"]


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every HTTP answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _not_found(what: str) -> JSONResponse:
    return error(404, f"no such {what}")


def _k(request: Request, explorer: Explorer) -> int | JSONResponse:
    text = request.query_params.get("k", str(explorer.config.k))
    top = explorer.config.max_k
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= top):
        return error(400, f"k must be a whole number from 1 to {top}; found {text[:20]!r}")
    return int(text)


def create_app(explorer: Explorer) -> Starlette:
    """The ASGI app serving ``explorer`` (see module docstring)."""
    static = {
        name: resources.files("echoic.serve").joinpath("static", name).read_bytes()
        for name in STATIC
    }

    async def page(request: Request) -> Response:
        return Response(static["index.html"], media_type=STATIC["index.html"])

    async def static_file(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "index.html" or name not in static:
            return _not_found("file")
        return Response(static[name], media_type=STATIC[name])

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "count": len(explorer)})

    async def info(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(explorer.info))

    map_body = JSONResponse(explorer.map_json()).body

    async def collection_map(request: Request) -> Response:
        return Response(map_body, media_type="application/json")

    async def neighbours(request: Request) -> Response:
        row = explorer.row(request.path_params["row"])
        if row is None:
            return _not_found("row")
        k = _k(request, explorer)
        if isinstance(k, JSONResponse):
            return k
        return JSONResponse(await run_in_threadpool(explorer.neighbours, row, k))

    async def audio(request: Request) -> Response:
        row = explorer.row(request.path_params["row"])
        path = None if row is None else explorer.audio_path(row)
        if path is None:
            return _not_found("audio")
        media = AUDIO_TYPES.get(path.suffix.lower(), "application/octet-stream")
        return FileResponse(path, media_type=media, headers={"cache-control": "no-cache"})

    async def thumbnail(request: Request) -> Response:
        row = explorer.row(request.path_params["row"])
        png = None if row is None else await run_in_threadpool(explorer.thumbnail, row)
        if png is None:
            return _not_found("thumbnail")
        return Response(png, media_type="image/png", headers={"cache-control": "max-age=3600"})

    async def query(request: Request) -> Response:
        k = _k(request, explorer)
        if isinstance(k, JSONResponse):
            return k
        limit = explorer.config.limits.max_bytes
        too_big = error(
            413,
            f"the upload is larger than the limit of {limit / 2**20:.1f} MiB; send a shorter "
            "clip (or restart the explorer with a larger --max-upload-mb)",
        )
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return too_big if declared.isdigit() else error(400, "bad Content-Length header")
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limit:
                return too_big
        name = request.query_params.get("name", "")
        suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
        try:
            answer = await run_in_threadpool(explorer.query_upload, bytes(body), suffix, k)
        except DecodeError as err:
            return error(err.status, str(err))
        return JSONResponse(answer)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error(exc.status_code, str(exc.detail))

    async def server_error(request: Request, exc: Exception) -> Response:
        return error(500, "internal error (see the server log)")

    routes = [
        Route("/", page),
        Route("/static/{name}", static_file),
        Route("/api/health", health),
        Route("/api/info", info),
        Route("/api/map", collection_map),
        Route("/api/neighbours/{row}", neighbours),
        Route("/api/audio/{row}", audio),
        Route("/api/thumbnail/{row}", thumbnail),
        Route("/api/query", query, methods=["POST"]),
    ]
    hosts = allowed_hosts(explorer.config.host, explorer.config.allowed_hosts)
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False),
    ]
    handlers: dict[Any, Any] = {HTTPException: http_error, Exception: server_error}
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=handlers)
    app.state.explorer = explorer
    return app
