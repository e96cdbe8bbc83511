"""``aacbatch serve``: a small local search page over one index (Flask).

``/?q=…&k=…`` shows the ranked hits, each with its score, name, time span (a windowed
index), generated caption (when the index has captions), an HTML5 player that starts at the
hit's span and a "more like this" link (``/?like=<id>&at=<window start>``: the hit's best
window as an audio example; with ``q`` too, a mixed query of text weight ``w``); ``/audio/<id>`` streams a file by its id in the
index (with HTTP range requests, so players can seek). Nothing else is served: a client
never names a path, ids not in the index are 404, and the page uses no external assets
(works offline). Bound to 127.0.0.1 unless told otherwise.

Given a registry, the same app also serves the registry dashboard
(:mod:`aacbatch.dashboard`: runs, lineage, curves, systems, the paper's tables); without a
searcher it serves only the dashboard, and ``/`` leads to its runs table.
"""

from __future__ import annotations

import errno
import socket

from flask import Flask, abort, redirect, render_template, request, send_file, url_for
from werkzeug.serving import make_server as werkzeug_server

from aacbatch.dashboard.views import dashboard
from aacbatch.errors import InputError
from aacbatch.registry.store import Registry
from aacbatch.search.index import describe
from aacbatch.search.query import Searcher, check_example

MIME = {".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg", ".mp3": "audio/mpeg",
        ".aif": "audio/aiff", ".aiff": "audio/aiff"}
MAX_K = 100


def create_app(searcher: Searcher | None, registry: Registry | None = None) -> Flask:
    """The search page over ``searcher``'s index and/or the dashboard over ``registry``."""
    app = Flask(__name__, static_folder=None)  # no /static route: only the pages, their own files and indexed audio
    if registry is not None:
        app.register_blueprint(dashboard(registry))
    if searcher is None:
        app.add_url_rule("/", "page", lambda: redirect(url_for("dashboard.runs")))
        return app
    index = searcher.index

    @app.get("/")
    def page():
        query = request.args.get("q") or None
        like_id = request.args.get("like", type=int)
        k = request.args.get("k", default=10, type=int)
        results, error = None, None
        if query is not None or like_id is not None or "q" in request.args:
            try:
                like = check_example(file_id=like_id, at=request.args.get("at", type=float)) if like_id is not None else None
                results = searcher.search(query if query is not None or like is not None else "", min(k, MAX_K),
                                          like=like, weight=request.args.get("w", default=0.5, type=float))
            except InputError as exc:
                error = str(exc)
        return render_template("search.html", index=index, n_files=len(index), model=searcher.describe_model() or describe(index.spec),
                               query=query or "", results=results, error=error, k=min(k, MAX_K), like_id=like_id)

    @app.get("/audio/<int:file_id>")
    def audio(file_id: int):
        path = searcher.audio_path(file_id)
        if path is None:
            abort(404)
        return send_file(path, mimetype=MIME.get(path.suffix.lower(), "application/octet-stream"), conditional=True)

    return app


def listen(host: str = "127.0.0.1", port: int = 8000) -> socket.socket:
    """A listening socket, or one line saying why not (a busy port). Bound here, not by
    werkzeug, which would print its own two lines and exit instead of raising; bound before a
    model is loaded, so a busy port is reported at once."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        busy = " (another program is listening there)" if exc.errno == errno.EADDRINUSE else ""
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{busy}; pass another --port "
                         "(or --port 0 for any free one)") from exc
    return sock


def make_server(searcher: Searcher | None, host: str = "127.0.0.1", port: int = 8000, sock: socket.socket | None = None,
                registry: Registry | None = None):
    """A threaded WSGI server for :func:`create_app` on ``sock`` (default: :func:`listen` on
    host and port; ``port=0`` picks a free port: ``server.server_port``)."""
    sock = sock or listen(host, port)
    with sock:  # werkzeug duplicates the descriptor (socket.fromfd); this one is closed after
        bound = sock.getsockname()[1]
        server = werkzeug_server(host, bound, create_app(searcher, registry), threaded=True, fd=sock.fileno())
    server.server_port = bound  # set by socketserver's own bind, which a given descriptor skips
    return server
