"""What each dashboard page shows, as plain data (dicts and lists): the HTML templates render
it and ``/api/...`` returns it as JSON, so a script sees exactly what a reader sees.

Every function reads through one :class:`~aacbatch.dashboard.reader.Snapshot` (packaged
queries of ``sql/dashboard/``) and checks its arguments: a bad one raises
:class:`~aacbatch.errors.InputError` naming it, an unknown run or system
:class:`~aacbatch.errors.NotFoundError`, a prefix that several share :class:`Ambiguous`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aacbatch.dashboard import configs, lineage
from aacbatch.dashboard.item_scores import METRICS as ITEM_METRICS
from aacbatch.dashboard.item_scores import ItemScores, retrieval_comparison
from aacbatch.dashboard.reader import Snapshot, plain
from aacbatch.dashboard.recent import MAX_AGE_S, Recent
from aacbatch.errors import AacbatchError, InputError, NotFoundError, shown
from aacbatch.evaluate.uncertainty import compare
from aacbatch.reports import PAPER_LABEL, displayed, run_report

SORTS = ("started", "run", "task", "family", "dataset", "tag_loss", "seed", "status", "metric", "val", "eval")
SCORE_SORTS = ("tag_loss", "metric", "val", "eval")  # need every matching run's config: runs_page_by_score.sql
LINEAGE_DEPTH = 6
PAGE_SIZES = (10, 25, 50, 100, 200)
CAPTIONS_PER_PAGE = 50
MAX_REF = 200  # longer references are no run id, name or prefix
MAX_COMPARED = 6
TABLES = ("table1", "table2")
TABLE_PARAMS = ("split", "dataset")


class Ambiguous(AacbatchError):
    """A prefix shared by several runs (or systems); ``matches`` lists them for a page to offer."""

    def __init__(self, message: str, kind: str, ref: str, matches: list[dict]):
        super().__init__(message)
        self.kind, self.ref, self.matches = kind, ref, matches


@dataclass(frozen=True)
class Links:
    """URL makers the views provide (pages stay free of routing)."""

    run: object
    system: object
    runs_search: object


# --- arguments -------------------------------------------------------------------------------

def text_arg(args: Mapping[str, str], name: str, limit: int = MAX_REF) -> str | None:
    """A free-text argument, stripped; None when absent or empty. Control characters and
    over-long values are refused (one line naming the argument)."""
    value = (args.get(name) or "").strip()
    if not value:
        return None
    if len(value) > limit or not value.isprintable():
        raise InputError(f"argument {name}={shown(value[:40])}: give at most {limit} printable characters")
    return value


def int_arg(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"argument {name}={shown(raw[:40])} is not a whole number") from None
    if not low <= value <= high:
        raise InputError(f"argument {name}={value} is out of range: give {low}…{high}")
    return value


def choice_arg(args: Mapping[str, str], name: str, choices, default):
    value = args.get(name) or default
    if value not in choices:
        raise InputError(f"argument {name}={shown(str(value)[:40])}: choose one of {', '.join(map(str, choices))}")
    return value


# --- resolving references --------------------------------------------------------------------

@dataclass(frozen=True)
class _Kind:
    """How a reference to a run or a system is looked up and named in messages."""

    query: str
    key: str
    what: str
    unknown: str  # the end of the not-found message
    listed: object  # a match as the ambiguity message lists it


_KINDS = {
    "run": _Kind("run_matches", "run_id", "run id", "no run has that id or prefix (a prefix needs at least 4 characters)",
                 lambda m: f"{m['run_id']} ({m['task']})"),
    "system": _Kind("system_matches", "system_id", "system", "no system has that name, id or id prefix",
                    lambda m: f"{m['name']} ({m['system_id']})"),
}


def resolve(snap: Snapshot, kind: str, ref: str) -> str:
    """The id of the run (``kind`` "run": an id or a unique prefix of ≥ 4 characters) or system
    ("system": its name, id or a unique id prefix) that ``ref`` names."""
    how = _KINDS[kind]
    ref = ref.strip()
    matches = snap.rows(how.query, ref=ref) if 0 < len(ref) <= MAX_REF and ref.isprintable() else []
    if len(matches) == 1:
        return matches[0][how.key]
    if matches:
        listed = ", ".join(how.listed(m) for m in matches[:5])
        raise Ambiguous(f"{how.what} prefix {ref!r} is ambiguous: it matches {listed}{' and more' if len(matches) > 5 else ''}; "
                        "give more characters", kind, ref, matches[:5])
    raise NotFoundError(f"unknown {how.what} {shown(ref)}: {how.unknown}")


def resolve_run(snap: Snapshot, ref: str) -> str:
    return resolve(snap, "run", ref)


# --- the runs table --------------------------------------------------------------------------

def run_rows(snap: Snapshot, run_ids: list[str]) -> list[dict]:
    """run_rows.sql for ``run_ids``, in that order (ids it does not know are left out)."""
    if not run_ids:
        return []
    found = {r["run_id"]: r for r in snap.rows("run_rows", runs=",".join(run_ids))}
    return [found[i] for i in run_ids if i in found]


def runs_page(snap: Snapshot, args: Mapping[str, str]) -> dict:
    filters = {name: text_arg(args, name) for name in ("task", "dataset", "status", "q")}
    sort = choice_arg(args, "sort", SORTS, "started")
    descending = int_arg(args, "desc", 1 if sort in ("started", "val", "eval") else 0, 0, 1)
    per = int(choice_arg(args, "per", tuple(map(str, PAGE_SIZES)), "50"))
    page = int_arg(args, "page", 1, 1, 10**6)
    query = "runs_page_by_score" if sort in SCORE_SORTS else "runs_page"
    picked = snap.rows(query, **filters, sort=sort, descending=descending, page_size=per, page_offset=(page - 1) * per)
    total = picked[0]["n_total"] if picked else 0
    if not picked and page > 1:  # past the last page: the count needs its own look
        first = snap.rows(query, **filters, sort=sort, descending=descending, page_size=1, page_offset=0)
        total = first[0]["n_total"] if first else 0
    facets: dict[str, list[dict]] = {"task": [], "dataset": [], "status": []}
    for f in snap.rows("run_facets"):
        facets[f["facet"]].append({"value": f["value"], "n_runs": f["n_runs"]})
    return {"filters": filters, "sort": sort, "desc": descending, "per": per, "page": page, "total": total,
            "pages": max(1, math.ceil(total / per)), "runs": run_rows(snap, [r["run_id"] for r in picked]),
            "facets": facets, "sorts": SORTS, "page_sizes": PAGE_SIZES}


# --- one run ---------------------------------------------------------------------------------

def final_scores(snap: Snapshot, runs: Sequence[str] = (), systems: Sequence[str] = ()) -> list[dict]:
    """final_scores.sql rows of these runs and systems (none read when both are empty)."""
    if not runs and not systems:
        return []
    return snap.rows("final_scores", runs=",".join(runs), systems=",".join(systems))


def score_cell(row: dict) -> dict:
    """One final score as a table cell: its value (or why there is none), its bootstrap
    interval over clips where one was computed, and the id of its provenance record."""
    return {"value": row["value"], "reason": row["reason"], "low": row["ci_low"], "high": row["ci_high"],
            "level": row["ci_level"], "provenance": row["provenance_id"]}


def score_columns(rows: list[dict]) -> dict:
    """Final-score rows as one table: a column per (dataset, split), a row per metric."""
    columns = list(dict.fromkeys((r["eval_dataset"], r["split"]) for r in rows))
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    cells = {m: [None] * len(columns) for m in metrics}
    for r in rows:
        cells[r["metric"]][columns.index((r["eval_dataset"], r["split"]))] = score_cell(r)
    return {"columns": [{"dataset": d, "split": s} for d, s in columns], "metrics": metrics,
            "rows": [{"metric": m, "cells": cells[m]} for m in metrics]}


def provenance_of(snap: Snapshot, rows: list[dict]) -> list[dict]:
    """The provenance records behind final-score rows (what computed each score: versions,
    file hashes, tokenisation), each with the scores it covers as ``dataset/split metric``."""
    covers: dict[str, list[str]] = {}
    for r in rows:
        if r["provenance_id"] is not None:
            covers.setdefault(r["provenance_id"], []).append(f"{r['eval_dataset']}/{r['split']} {r['metric']}")
    found = snap.rows("provenance", ids=",".join(covers)) if covers else []
    return [{"id": p["id"], "record": json.loads(p["record_json"]), "scores": covers[p["id"]]} for p in found]


def curves_of(snap: Snapshot, run_ids: list[str]) -> list[dict]:
    """Per-epoch series of runs: one per (run, metric, split), epochs ascending."""
    series: dict[tuple, dict] = {}
    for r in snap.rows("curves", runs=",".join(run_ids)):
        key = (r["run_id"], r["metric"], r["split"])
        one = series.setdefault(key, {"run_id": r["run_id"], "metric": r["metric"], "split": r["split"],
                                      "epochs": [], "values": []})
        one["epochs"].append(r["epoch"])
        one["values"].append(r["value"])
    return list(series.values())


def run_curves(snap: Snapshot, ref: str) -> dict:
    """What a running run's page polls: its status and every curve so far."""
    run_id = resolve_run(snap, ref)
    status = snap.row("run_matches", ref=run_id)["status"]
    return {"run_id": run_id, "status": status, "curves": curves_of(snap, [run_id])}


def _files(snap: Snapshot, run_id: str) -> list[dict]:
    files = snap.rows("run_files", run=run_id)
    for f in files:
        real = snap.registry.real_path(f["path"])
        f["exists"] = Path(real).is_file() if "://" not in real else None
        f["name"] = Path(real).name
        f["real_path"] = real
    return files


def ancestry(snap: Snapshot, run_id: str, depth: int = LINEAGE_DEPTH) -> list[dict]:
    """run_inputs.sql rows of a run and of everything it descends from, up to ``depth`` links."""
    edges, seen, level = [], {run_id}, [run_id]
    for _ in range(depth):
        found = snap.rows("run_inputs", runs=",".join(level))
        edges += found
        level = [i for i in dict.fromkeys(e["input_id"] for e in found if e["input_task"] is not None) if i not in seen]
        seen.update(level)
        if not level:
            break
    return edges


def run_page(snap: Snapshot, ref: str, links: Links, against: str | None = None) -> dict:
    run_id = resolve_run(snap, ref)
    run = {**run_rows(snap, [run_id])[0], **snap.row("run", run=run_id)}
    config = json.loads(run.pop("config_json"))
    run["feature_sets"] = json.loads(run.pop("feature_sets_json"))
    other_id = resolve_run(snap, against) if against else run["parent_run_id"]
    other = snap.row("run", run=other_id) if other_id else None
    systems = snap.rows("run_systems", run=run_id)
    finals = final_scores(snap, runs=[run_id])
    graph = lineage.build(run, ancestry(snap, run_id), snap.rows("run_users", run=run_id), systems, links.run,
                          links.system, lambda: links.runs_search(run_id))
    return {
        "run": run,
        "config": [vars(line) for line in configs.diff(config, json.loads(other["config_json"]) if other else None)],
        "against": None if other is None else {"run_id": other_id, "task": snap.row("run_matches", ref=other_id)["task"],
                                               "how": "chosen" if against else "parent"},
        "lineage": graph,
        "systems": systems,
        "files": _files(snap, run_id),
        "scores": score_columns(finals),
        "provenance": provenance_of(snap, finals),
        "caption_sets": snap.rows("caption_sets", owner=run_id),
        "curves": curves_of(snap, [run_id]),
    }


# --- captions beside references ---------------------------------------------------------------

def captions_page(snap: Snapshot, kind: str, ref: str, args: Mapping[str, str], item_scores: ItemScores) -> dict:
    """One split's generated captions of a run or system, each beside its references, with
    per-clip scores (once computed), sortable so the worst come first."""
    owner = resolve(snap, kind, ref)
    sets = snap.rows("caption_sets", owner=owner)
    if not sets:
        raise NotFoundError(f"{kind} {shown(ref)} has no generated captions (only captioners and captioning "
                            "systems have)")
    default = next((s for s in sets if s["split"] == "eval"), sets[0])
    dataset = text_arg(args, "dataset") or default["dataset"]
    split = text_arg(args, "split") or default["split"]
    if not any(s["dataset"] == dataset and s["split"] == split for s in sets):
        have = ", ".join(f"{s['dataset']}/{s['split']}" for s in sets)
        raise NotFoundError(f"{kind} {shown(ref)} has no captions for {shown(dataset)}/{shown(split)} (it has {have})")
    clips: dict[str, dict] = {}
    for r in snap.rows("captions", owner=owner, dataset=dataset, split=split):
        clip = clips.setdefault(r["clip_id"], {"clip_id": r["clip_id"], "clip": r["clip"], "prediction": r["prediction"],
                                               "references": [], "scores": {}})
        if r["reference"] is not None:
            clip["references"].append(r["reference"])
    scorable = {k: c for k, c in clips.items() if c["references"] and c["prediction"].strip()}
    scored = item_scores.get({k: c["prediction"] for k, c in scorable.items()},
                             {k: c["references"] for k, c in scorable.items()}) if scorable else None
    means = {}
    if scored is not None and scored.state == "ready":
        for metric, values in scored.scores.per_item.items():
            for clip_id, value in values.items():
                clips[clip_id]["scores"][metric] = value
            means[metric] = sum(values.values()) / len(values)
    sorts = ("clip", *ITEM_METRICS)  # a metric sort asked for before the scores are ready keeps clip order
    sort = choice_arg(args, "sort", sorts, ITEM_METRICS[0] if means else "clip")
    descending = int_arg(args, "desc", 0, 0, 1)
    ordered = list(clips.values())  # in the dataset's clip order
    if sort != "clip":  # unscored clips (no references) last either way
        ordered.sort(key=lambda c: (c["scores"].get(sort) is None, c["scores"].get(sort, 0.0) * (-1 if descending else 1)))
    elif descending:
        ordered.reverse()
    page = int_arg(args, "page", 1, 1, 10**6)
    recorded = final_scores(snap, **{"runs" if kind == "run" else "systems": [owner]})
    stored = {r["metric"]: r["value"] for r in recorded if r["eval_dataset"] == dataset and r["split"] == split}
    return {
        "kind": kind, "owner": owner, "dataset": dataset, "split": split, "sets": sets,
        "state": scored.state if scored is not None else "failed",
        "reason": scored.reason if scored is not None else "no clip has both a caption and references",
        "metrics": list(ITEM_METRICS), "means": means, "recorded": {m: stored.get(m) for m in ITEM_METRICS},
        "sort": sort, "sorts": sorts, "desc": descending, "page": page,
        "pages": max(1, math.ceil(len(ordered) / CAPTIONS_PER_PAGE)), "n_clips": len(ordered),
        "clips": ordered[(page - 1) * CAPTIONS_PER_PAGE: page * CAPTIONS_PER_PAGE],
    }


# --- systems ---------------------------------------------------------------------------------

def _members(snap: Snapshot, system_ids: list[str]) -> dict[str, list[dict]]:
    """Each system's members in rank order, each with run_rows.sql's view of its run."""
    members = snap.rows("system_members", systems=",".join(system_ids)) if system_ids else []
    runs = {r["run_id"]: r for r in run_rows(snap, list(dict.fromkeys(m["run_id"] for m in members)))}
    out: dict[str, list[dict]] = {i: [] for i in system_ids}
    for m in members:
        out[m["system_id"]].append({**runs.get(m["run_id"], {}), **m})
    return out


def systems_page(snap: Snapshot) -> dict:
    systems = snap.rows("systems")
    members = _members(snap, [s["system_id"] for s in systems])
    for s in systems:
        s["random_inputs"] = any(m.get("random_inputs") for m in members[s["system_id"]])
    return {"systems": systems}


def system_page(snap: Snapshot, ref: str) -> dict:
    system_id = resolve(snap, "system", ref)
    system = snap.row("system", system=system_id)
    system["params"] = json.loads(system.pop("params_json") or "{}")
    members = _members(snap, [system_id])[system_id]
    own = final_scores(snap, systems=[system_id])
    wanted = list(dict.fromkeys((r["split"], r["metric"]) for r in own if r["eval_dataset"] == system["dataset"]))
    member_scores = final_scores(snap, runs=[m["run_id"] for m in members])
    values = {(r["owner_id"], r["split"], r["metric"]): r["value"] for r in member_scores
              if r["eval_dataset"] == system["dataset"]}
    for m in members:
        m["scores"] = [values.get((m["run_id"], split, metric)) for split, metric in wanted]
    return {"system": system, "members": members, "member_columns": [{"split": s, "metric": m} for s, m in wanted],
            "scores": score_columns(own), "provenance": provenance_of(snap, own), "caption_sets": snap.rows("caption_sets", owner=system_id)}


# --- the paper's tables ----------------------------------------------------------------------

def table_page(snap: Snapshot, name: str, args: Mapping[str, str], recent: Recent) -> dict:
    """Table 1 or 2 as ``aacbatch report NAME --with-paper`` prints it: this registry's rows,
    and apart from them, labelled, the paper's published numbers. The report's views take
    seconds on a large registry, so the table is the last one computed (``computed_at``;
    ``refreshing`` while a newer one is computed, at most every :data:`recent.MAX_AGE_S`)."""
    if name not in TABLES:
        raise NotFoundError(f"unknown table {shown(name)}: the dashboard shows {', '.join(TABLES)}")
    params = {k: v for k in TABLE_PARAMS if (v := text_arg(args, k)) is not None}
    answer = recent.get(("table", name, tuple(sorted(params.items()))), lambda: _table(snap.registry, name, params))
    computed = {"computed_at": plain(answer.computed_at), "refreshing": answer.refreshing, "max_age_s": MAX_AGE_S}
    if answer.value is None:
        return {"name": name, "params": params, "error": None, "columns": [], "rows": [], "paper": None, **computed}
    return {**answer.value, **computed}


def _table(registry, name: str, params: dict) -> dict:
    try:
        report = run_report(registry, name, params, with_paper=True)
    except InputError as exc:  # e.g. no finished runs to take a default dataset from yet
        return {"name": name, "params": params, "error": str(exc), "columns": [], "rows": [], "paper": None}
    table = displayed(report.table)
    return {"name": name, "params": {k: v for k, v in report.params.items() if v is not None}, "error": None,
            "columns": table.columns, "rows": [list(r) for r in table.rows],
            "paper": {"label": PAPER_LABEL, "columns": report.paper.columns, "rows": [list(r) for r in report.paper.rows]}}


# --- compare ---------------------------------------------------------------------------------

def _item(snap: Snapshot, kind: str, ref: str, links: Links) -> dict:
    if kind == "run":
        run_id = resolve_run(snap, ref)
        run = snap.row("run_matches", ref=run_id)
        return {"kind": "run", "id": run_id, "label": f"{run['task']} · {run_id[:8]}", "href": links.run(run_id)}
    system_id = resolve(snap, "system", ref)
    system = snap.row("system_matches", ref=system_id)
    return {"kind": "system", "id": system_id, "label": f"system {system['name']}", "href": links.system(system["name"])}


def compare_page(snap: Snapshot, runs: list[str], systems: list[str], links: Links) -> dict:
    """2–6 runs or systems: final metrics side by side, curves together, and the pairs (first
    item vs each other, per dataset/split both were scored on) a paired test can be asked for."""
    refs = [("run", r) for r in runs if r.strip()] + [("system", s) for s in systems if s.strip()]
    if not 2 <= len(refs) <= MAX_COMPARED:
        raise InputError(f"compare takes 2–{MAX_COMPARED} runs or systems, got {len(refs)}: tick them in the runs "
                         "or systems table, or give ?run=ID&run=ID (system=NAME for systems)")
    items = [_item(snap, kind, ref, links) for kind, ref in refs]
    if len({(i["kind"], i["id"]) for i in items}) < len(items):
        raise InputError("compare lists the same run or system twice: pick different ones")
    run_ids = [i["id"] for i in items if i["kind"] == "run"]
    system_ids = [i["id"] for i in items if i["kind"] == "system"]
    scores = final_scores(snap, runs=run_ids, systems=system_ids)
    position = {i["id"]: k for k, i in enumerate(items)}
    table: dict[tuple, list] = {}
    for r in scores:
        key = (r["eval_dataset"], r["split"], r["metric"])
        table.setdefault(key, [None] * len(items))[position[r["owner_id"]]] = score_cell(r)
    rows = [{"dataset": d, "split": s, "metric": m, "cells": cells} for (d, s, m), cells in sorted(table.items())]
    shared = {}
    for k, item in enumerate(items[1:], start=1):
        shared[k] = sorted({(r["dataset"], r["split"]) for r in rows if r["cells"][0] and r["cells"][k]})
    pairs = [{"a": 0, "b": k, "dataset": d, "split": s} for k, sets in shared.items() for d, s in sets]
    return {"items": items, "rows": rows, "curves": curves_of(snap, run_ids) if run_ids else [], "pairs": pairs}


def paired_test(snap: Snapshot, a: str, b: str, dataset: str, split: str, item_scores: ItemScores) -> dict:
    """A vs B (``run:REF`` or ``system:REF``) on one split: per metric the difference, its
    paired-bootstrap interval and a randomisation p-value, from per-clip data — similarity
    matrices for retrieval models, per-clip caption scores for captioners (``pending`` while
    those are computed). ``unavailable`` (with the reason) when neither side has them."""
    owners = []
    for spec in (a, b):
        kind, _, ref = spec.partition(":")
        if kind not in ("run", "system") or not ref:
            raise InputError(f"argument {shown(spec[:40])}: give run:ID or system:NAME")
        owners.append(resolve(snap, kind, ref))
    where = {"dataset": dataset, "split": split}
    similarity = [snap.row("similarity", owner=o, **where) for o in owners]
    if all(similarity):
        paths = [snap.registry.real_path(s["artifact_path"]) for s in similarity]
        return _comparisons("retrieval (similarity matrices)", retrieval_comparison(*paths))
    scored = []
    for owner in owners:
        clips: dict[str, dict] = {}
        for r in snap.rows("captions", owner=owner, **where):
            clip = clips.setdefault(r["clip_id"], {"prediction": r["prediction"], "references": []})
            if r["reference"] is not None:
                clip["references"].append(r["reference"])
        if not clips:
            return {"state": "unavailable", "reason": f"no similarity matrix or captions of {dataset}/{split} on both "
                                                      "sides to pair clip by clip", "comparisons": []}
        scored.append(item_scores.get({k: c["prediction"] for k, c in clips.items()},
                                      {k: c["references"] for k, c in clips.items()}))
    if any(s.state == "failed" for s in scored):
        return {"state": "unavailable", "reason": next(s.reason for s in scored if s.state == "failed"), "comparisons": []}
    if any(s.state == "pending" for s in scored):
        return {"state": "pending", "reason": "computing per-clip caption scores", "comparisons": []}
    try:
        found = compare(scored[0].scores.statistics, scored[1].scores.statistics)
    except ValueError as exc:
        return {"state": "unavailable", "reason": str(exc), "comparisons": []}
    return _comparisons("captions (per-clip scores)", found)


def _comparisons(basis: str, found: dict) -> dict:
    out = [{"metric": m, "a": c.a, "b": c.b, "difference": c.difference, "low": c.low, "high": c.high,
            "p_value": c.p_value} for m, c in found.items()]
    first = next(iter(found.values()), None)
    return {"state": "ready", "basis": basis, "comparisons": out,
            "level": first.level if first else None, "resamples": first.resamples if first else None}
