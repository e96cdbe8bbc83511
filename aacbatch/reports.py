"""Reports: packaged SQL (``sql/reports/NAME.sql``) rendered as tables and plots.

A report query declares its parameter defaults (``-- param: split = eval``) and, when it can
be drawn, a plot kind (``-- plot: bars`` for one group of bars per row and one bar per metric
column, ``-- plot: curves`` for long rows of run label, metric, epoch and value). A column
``X_reason`` explains NULLs of column ``X``: the two are shown as one cell, ``n/a (reason)``.

The paper's published numbers (its Tables 1 and 2, Clotho evaluation split) live in one data file,
``sql/reports/paper_reference.csv``, and are only ever shown in their own block labelled as
the paper's — never mixed into rows computed from the registry.
"""

from __future__ import annotations

import csv
import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

from aacbatch.audit.leakage import leak_notes
from aacbatch.errors import InputError
from aacbatch.formatting import render
from aacbatch.registry.queries import declared_params, named_query, run_sql, with_dataset
from aacbatch.registry.runs import get_run
from aacbatch.registry.systems import members_of, system_by_name
from aacbatch.registry.store import Registry
from aacbatch.resources import resource_dir

PAPER_LABEL = ("Paper's published numbers (Clotho v2.1 evaluation split, 1045 clips × 5 captions) — "
               "reference only, not computed from this registry")
RANDOM_NOTE = "random-weight"
_PLOT = re.compile(r"^--\s*plot:\s*(\w+)\s*$", re.MULTILINE)
_REASON = "_reason"
_BOUNDS = ("_low", "_high")


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[tuple]


@dataclass(frozen=True)
class Report:
    name: str
    params: dict[str, object]
    table: Table  # as the query returned it (NULLs and their _reason columns separate)
    plot: str | None  # "bars", "curves" or None
    paper: Table | None  # the paper's numbers for this report, when asked for and known


def report_query(name: str) -> tuple[str, str]:
    """Text of report ``name`` (a packaged report or a path to a .sql file) and its source."""
    packaged = not name.endswith(".sql")
    path = named_query(name, "reports") if packaged else Path(name)
    try:
        return path.read_text(encoding="utf-8"), f"sql/reports/{name}.sql" if packaged else str(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read report query {path}: {exc}") from exc


def run_report(registry: Registry, name: str, params: dict[str, object] | None = None, *,
               with_paper: bool = False) -> Report:
    sql, source = report_query(name)
    params = with_dataset(registry, sql, {**declared_params(sql), **(params or {})})
    columns, rows = run_sql(registry, sql, params, source=source)
    if _LEAK_COLUMNS <= set(columns) and "split" in params:
        rows = with_leak_notes(registry, columns, rows, str(params["split"]))
    plot = _PLOT.search(sql)
    paper = paper_reference(Path(name).stem) if with_paper else None
    if with_paper and paper is None:
        raise InputError(f"the paper has no reference numbers for report {name!r} (only for "
                         f"{', '.join(sorted(_paper_rows()))})")
    return Report(Path(name).stem, params, Table(columns, rows), plot.group(1) if plot else None, paper)


_LEAK_COLUMNS = {"system", "dataset", "source", "note"}  # the rows of report table1/table2


def with_leak_notes(registry: Registry, columns: list[str], rows: list[tuple], split: str) -> list[tuple]:
    """Rows whose model (``source`` "run <id>", or a system named in ``system``) or an ancestor
    trained on clips of the row's ``dataset``/``split`` get a ``leak: …`` note (see
    :mod:`aacbatch.audit.leakage`): a test score on heard audio is not a test score."""
    at = {c: columns.index(c) for c in _LEAK_COLUMNS}
    out = []
    for row in rows:
        source, dataset = row[at["source"]], row[at["dataset"]]
        if str(source).startswith("run "):
            runs = [get_run(registry, source[4:]).id]
        else:
            runs = [r for r, _ in members_of(registry, system_by_name(registry, row[at["system"]]))]
        notes = [n for n in leak_notes(registry, runs, dataset, (split,))] if dataset else []
        if notes:
            row = list(row)
            row[at["note"]] = "; ".join([row[at["note"]]] * bool(row[at["note"]]) + notes)
            row = tuple(row)
        out.append(row)
    return out


def _paper_rows() -> dict[str, list[dict[str, str]]]:
    path = resource_dir("sql") / "reports" / "paper_reference.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        out: dict[str, list[dict[str, str]]] = {}
        for row in csv.DictReader(handle):
            out.setdefault(row["report"], []).append(row)
    return out


def paper_reference(report: str) -> Table | None:
    """The paper's numbers for ``report`` as a table (rows and metric columns in file order)."""
    entries = _paper_rows().get(report)
    if not entries:
        return None
    systems = list(dict.fromkeys(e["system"] for e in entries))
    metrics = list(dict.fromkeys(e["metric"] for e in entries))
    values = {(e["system"], e["metric"]): float(e["value"]) for e in entries}
    return Table(["system (paper)"] + metrics, [(s, *(values.get((s, m)) for m in metrics)) for s in systems])


def displayed(table: Table, notes: list[str] | None = None, *, ci: str | None = None) -> Table:
    """``X`` and ``X_reason`` merged into one column: the value, or ``n/a (reason)`` when NULL.

    With ``notes`` (a list to fill), a NULL cell shows ``n/a [k]`` and the k-th distinct
    reason is appended to ``notes``: a terminal table stays readable when the same long
    reason (a missing SPICE jar) applies to three metrics of every row. Interval columns
    ``X_low``/``X_high`` are left out unless ``ci``: ``"cell"`` shows ``value [low, high]`` in
    one cell (terminal and Markdown), ``"columns"`` keeps them as numbers (CSV, JSON).
    """
    index = {c: k for k, c in enumerate(table.columns)}
    bounds = {c for c in table.columns for suffix in _BOUNDS if c.endswith(suffix) and c[:-len(suffix)] in index}
    keep = [c for c in table.columns if not (c.endswith(_REASON) and c[:-len(_REASON)] in index)
            and (c not in bounds or ci == "columns")]

    def cell(row: tuple, column: str) -> object:
        value = row[index[column]]
        if ci == "cell" and value is not None and column + _BOUNDS[0] in bounds:
            low, high = row[index[column + _BOUNDS[0]]], row[index[column + _BOUNDS[1]]]
            return f"{value:.4f} [{low:.4f}, {high:.4f}]" if low is not None and high is not None else value
        reason_at = index.get(column + _REASON)
        if value is None and reason_at is not None and row[reason_at]:
            if notes is None:
                return f"n/a ({row[reason_at]})"
            if row[reason_at] not in notes:
                notes.append(row[reason_at])
            return f"n/a [{notes.index(row[reason_at]) + 1}]"
        return value

    return Table(keep, [tuple(cell(row, c) for c in keep) for row in table.rows])


def render_report(report: Report, fmt: str = "table", *, ci: bool = False) -> str:
    """The report in ``fmt``; with the paper's numbers, a second block labelled as the paper's.
    In the terminal ``table`` format, reasons for n/a cells are numbered notes under the table.
    ``ci`` shows every metric's 95 % bootstrap interval (in the cell, or as columns in CSV/JSON)."""
    notes: list[str] | None = [] if fmt == "table" else None
    shown = displayed(report.table, notes, ci=(("columns" if fmt in ("csv", "json") else "cell") if ci else None))
    body = render(shown.columns, shown.rows, fmt)
    if notes:
        body += "\n" + "\n".join(f"[{k}] {reason}" for k, reason in enumerate(notes, start=1))
    if report.paper is None:
        return body
    if fmt == "json":
        as_records = lambda t: [dict(zip(t.columns, r)) for r in t.rows]  # noqa: E731
        return json.dumps({"registry": as_records(shown), "paper": {"label": PAPER_LABEL, "rows": as_records(report.paper)}},
                          indent=2, ensure_ascii=False, default=str)
    if fmt == "csv":
        raise InputError("--with-paper adds a second table, which CSV cannot hold: use --format table, md or json")
    return "\n\n".join([f"This registry ({report.name}, split {report.params.get('split', 'n/a')}):", body,
                        PAPER_LABEL + ":", render(report.paper.columns, report.paper.rows, fmt)])


def plot_report(report: Report, path: Path) -> Path:
    """Draw the report as a PNG (matplotlib, Agg): grouped bars or training curves."""
    if report.plot not in ("bars", "curves"):
        raise InputError(f"report {report.name!r} has no plot (reports with one: table1, table2, curves)")
    if not report.table.rows:
        raise InputError(f"report {report.name!r} has no rows to plot with {report.params}: build systems or train runs first")
    if path.suffix.lower() != ".png":
        raise InputError(f"--plot {path}: give a .png file name")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig = _bars(plt, report) if report.plot == "bars" else _curves(plt, report)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return path


def _random_rows(table: Table) -> list[bool]:
    return [any(isinstance(v, str) and RANDOM_NOTE in v for v in row) for row in table.rows]


def _bars(plt, report: Report):
    """One group per row (its first column), one bar per float metric column; a NULL value is
    marked n/a, and metrics NULL in every row (an asset missing) are named in a footnote."""
    table = report.table
    index = {c: k for k, c in enumerate(table.columns)}
    bounds = {c for c in table.columns for suffix in _BOUNDS if c.endswith(suffix) and c[:-len(suffix)] in index}
    metrics = [k for k, c in enumerate(table.columns)
               if not c.endswith(_REASON) and c not in bounds and any(isinstance(r[k], float) for r in table.rows)
               and all(r[k] is None or isinstance(r[k], float) for r in table.rows)]
    if not metrics:
        raise InputError(f"report {report.name!r} has no metric columns to plot")
    absent = [c for k, c in enumerate(table.columns)
              if c + _REASON in table.columns and all(r[k] is None for r in table.rows)]
    marked = _random_rows(table)
    labels = [textwrap.fill(f"{row[0]}{' †' if m else ''}", 16) for row, m in zip(table.rows, marked)]
    width = 0.8 / len(metrics)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(labels) * len(metrics) + 2.5), 4.0))
    for j, k in enumerate(metrics):
        xs = [i + (j - (len(metrics) - 1) / 2) * width for i in range(len(labels))]
        values = [row[k] for row in table.rows]
        column = table.columns[k]
        errors = None
        if column + _BOUNDS[0] in index:  # error bars: the 95 % bootstrap interval
            low, high = index[column + _BOUNDS[0]], index[column + _BOUNDS[1]]
            errors = [[max(0.0, v - (row[low] if row[low] is not None else v)) for row, v in zip(table.rows, values)
                       if v is not None],
                      [max(0.0, (row[high] if row[high] is not None else v) - v) for row, v in zip(table.rows, values)
                       if v is not None]]
        ax.bar([x for x, v in zip(xs, values) if v is not None], [v for v in values if v is not None], width,
               label=column, yerr=errors, capsize=2 if errors else 0)
        for x, v in zip(xs, values):
            if v is None:
                ax.text(x, 0.01, "n/a", rotation=90, ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    top = max([row[k] for row in table.rows for k in metrics if row[k] is not None], default=1.0)
    ax.set_ylabel("score (higher is better)")  # CIDEr-D runs to 10; the others to 1
    ax.set_ylim(0, max(1.05, 1.1 * top))
    ax.set_title(f"{report.name}: split {report.params.get('split', 'n/a')}")
    ax.legend(title="metric", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    notes = (["† depends on random-weight stand-in models"] if any(marked) else []) + (
        [f"not computed (asset missing, see the table): {', '.join(absent)}"] if absent else [])
    ax.set_xlabel("\n".join(notes), fontsize=8)
    return fig


def _curves(plt, report: Report):
    """One panel per metric, one line per run: value against epoch."""
    from matplotlib.ticker import MaxNLocator

    table = report.table
    need = ("run", "label", "metric", "epoch", "value")
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise InputError(f"report {report.name!r} lacks column(s) {', '.join(missing)} needed for curves")
    at = {c: table.columns.index(c) for c in need}
    marked = dict(zip((row[at["run"]] for row in table.rows), _random_rows(table)))
    series: dict[str, dict[str, list[tuple[int, float]]]] = {}
    labels = {}
    for row in table.rows:
        if row[at["value"]] is None:
            continue
        run = row[at["run"]]
        labels[run] = f"{row[at['label']]} · {run}{' †' if marked[run] else ''}"
        series.setdefault(row[at["metric"]], {}).setdefault(run, []).append((row[at["epoch"]], row[at["value"]]))
    palette = plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")
    colors = {run: palette(i % palette.N) for i, run in enumerate(labels)}  # a run keeps its colour in every panel
    cols = min(3, len(series))
    rows = -(-len(series) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
    for ax, (metric, runs) in zip(axes.flat, sorted(series.items())):
        for run, points in runs.items():
            points.sort()
            ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", color=colors[run], label=labels[run])
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric + (" (training loss)" if metric == "loss" else ""))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(series):]:
        ax.set_visible(False)
    legend = {}  # one entry per run, whichever panels it appears in
    for ax in axes.flat:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(name, handle)
    fig.legend(list(legend.values()), list(legend), loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=2, fontsize=7)
    note = "; † depends on random-weight stand-in models" if any(marked.values()) else ""
    fig.suptitle(f"{report.name}: validation metrics per epoch (loss: training){note}", fontsize=10)
    fig.tight_layout()
    return fig
