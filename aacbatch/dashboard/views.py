"""The dashboard's routes: a Flask Blueprint registered on the same app as the search page.

Every page exists twice, as HTML and as JSON under ``/api`` (same arguments, same data:
:mod:`aacbatch.dashboard.pages`). Errors are pages too — an unknown id is a 404 naming it, a
shared prefix a page listing the runs that share it (300), a bad argument a 400 saying
which, a registry locked for longer than a page waits a 503 that retries by itself — and
in JSON ``{"error": …}`` with the same status. Static files (the vendored chart library,
the page script and style) are served from the package: nothing is loaded from the network.

Routes (HTML; prefix ``/api`` for JSON): ``/runs``, ``/runs/<ref>``, ``/runs/<ref>/curves``
(JSON only: what a live page polls), ``/runs/<ref>/captions``, ``/runs/<ref>/files/<id>``
(a checkpoint or artifact the registry lists, downloaded), ``/systems``,
``/systems/<ref>``, ``/systems/<ref>/captions``, ``/tables/<table1|table2>``,
``/compare?run=…&system=…``, ``/api/paired?a=run:…&b=…&dataset=…&split=…``.
"""

from __future__ import annotations

import math
from pathlib import Path

from flask import Blueprint, abort, jsonify, render_template, request, send_file, url_for

from aacbatch.dashboard import pages
from aacbatch.dashboard.item_scores import ItemScores
from aacbatch.dashboard.reader import Busy, Reader
from aacbatch.dashboard.recent import Recent
from aacbatch.errors import InputError, NotFoundError, RegistryBusy, shown
from aacbatch.registry.store import Registry

LIVE_POLL_S = 3
BUSY_RETRY_S = 2


def _jsonable(value):
    """Page data as JSON takes it: objects by their ``as_json``, NaN and infinities as null."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "as_json"):
        return value.as_json()
    return value


def dashboard(registry: Registry, *, read_timeout: float | None = None) -> Blueprint:
    """The dashboard over ``registry`` as a Blueprint (mounted at the app's root)."""
    reader = Reader(registry, **({"read_timeout": read_timeout} if read_timeout is not None else {}))
    item_scores = ItemScores(Path(registry.settings.home) / "assets")
    recent = Recent()
    bp = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static",
                   static_url_path="/static/dashboard")

    def links() -> pages.Links:
        return pages.Links(run=lambda run_id: url_for("dashboard.run", ref=run_id),
                           system=lambda name: url_for("dashboard.system", ref=name),
                           runs_search=lambda q: url_for("dashboard.runs", q=q))

    def page(rule: str, template: str | None):
        """Register ``build(snap, **url_values)`` as HTML (``template``) and JSON (``/api`` + rule)."""
        def register(build):
            name = build.__name__

            def as_html(**values):
                with reader.snapshot() as snap:  # the connection is closed before rendering
                    data = build(snap, **values)
                return render_template(f"dashboard/{template}", stale=snap.stale_note, live_poll_s=LIVE_POLL_S, **data)

            def as_json(**values):
                with reader.snapshot() as snap:
                    data = build(snap, **values)
                return jsonify(_jsonable({**data, "stale": snap.stale_note}))

            if template is not None:
                bp.add_url_rule(rule, name, as_html)
            bp.add_url_rule("/api" + rule, f"api_{name}", as_json)
            return build
        return register

    @page("/runs", "runs.html")
    def runs(snap):
        return pages.runs_page(snap, request.args)

    @page("/runs/<ref>", "run.html")
    def run(snap, ref):
        return pages.run_page(snap, ref, links(), pages.text_arg(request.args, "diff"))

    @page("/runs/<ref>/curves", None)
    def curves(snap, ref):
        return pages.run_curves(snap, ref)

    @page("/runs/<ref>/captions", "captions.html")
    def run_captions(snap, ref):
        return pages.captions_page(snap, "run", ref, request.args, item_scores)

    @page("/systems", "systems.html")
    def systems(snap):
        return pages.systems_page(snap)

    @page("/systems/<ref>", "system.html")
    def system(snap, ref):
        return pages.system_page(snap, ref)

    @page("/systems/<ref>/captions", "captions.html")
    def system_captions(snap, ref):
        return pages.captions_page(snap, "system", ref, request.args, item_scores)

    @page("/tables/<name>", "table.html")
    def table(snap, name):
        return pages.table_page(snap, name, request.args, recent)

    @page("/compare", "compare.html")
    def compare(snap):
        return pages.compare_page(snap, request.args.getlist("run"), request.args.getlist("system"), links())

    @page("/paired", None)
    def paired(snap):
        args = {k: pages.text_arg(request.args, k) for k in ("a", "b", "dataset", "split")}
        missing = [k for k, v in args.items() if v is None]
        if missing:
            raise InputError(f"paired needs {', '.join(missing)}: ?a=run:ID&b=run:ID&dataset=NAME&split=eval")
        return pages.paired_test(snap, args["a"], args["b"], args["dataset"], args["split"], item_scores)

    @bp.get("/runs/<ref>/files/<file_id>")
    def run_file(ref, file_id):
        """A checkpoint or artifact of the run, by the id of its registry row: no client names a path."""
        with reader.snapshot() as snap:
            found = snap.row("file", id=file_id, owner=pages.resolve_run(snap, ref)) if len(file_id) <= 64 else None
        if found is None:
            raise NotFoundError(f"run {shown(ref)} has no checkpoint or artifact {shown(file_id)}")
        path = Path(snap.registry.real_path(found["path"]))
        if not path.is_file():
            raise NotFoundError(f"the registry lists {path}, but the file is gone")
        return send_file(path, as_attachment=True, download_name=path.name)

    def failure(status: int, message: str, **extra):
        if request.path.startswith("/api/"):
            return jsonify({"error": message, **extra}), status
        return render_template("dashboard/error.html", status=status, message=message, stale=None, **extra), status

    @bp.app_errorhandler(NotFoundError)
    def not_found(exc):
        return failure(404, str(exc))

    @bp.app_errorhandler(pages.Ambiguous)
    def ambiguous(exc):
        return failure(300, str(exc), kind=exc.kind, ref=exc.ref, matches=exc.matches)

    @bp.app_errorhandler(InputError)
    def bad_input(exc):
        return failure(400, str(exc))

    @bp.app_errorhandler(Busy)
    @bp.app_errorhandler(RegistryBusy)
    def busy(exc):
        body, status = failure(503, str(exc), retry_s=BUSY_RETRY_S)
        return body, status, {"Retry-After": str(BUSY_RETRY_S)}

    @bp.app_errorhandler(404)
    def unknown_page(exc):
        return failure(404, f"nothing at {shown(request.path)}: the dashboard's pages are /runs, /systems, "
                            "/tables/table1, /tables/table2 and /compare")

    return bp
