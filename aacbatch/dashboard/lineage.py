"""A run's lineage laid out as a left-to-right graph (drawn as inline SVG, no script).

Inputs sit to the left of what they fed: a node's column is minus the longest chain of uses
from it to the run shown (so every arrow points right, even when a run is both a parent and
a parent's parent), the run is column 0, the runs that use it are column 1 and the systems
that have it as a member are the last column. A column holds at most :data:`MAX_PER_COLUMN`
nodes; the rest become one "+N more" node (for the runs using it, a link to the runs table
searching for this run's id, which lists them all).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_PER_COLUMN = 12
NODE_W, NODE_H, COLUMN_W, ROW_H, PAD = 200, 46, 270, 58, 10


@dataclass
class Node:
    key: str  # a run id, "system:<id>", a non-run input as given, or "more:<column>"
    kind: str  # "run", "system", "file" (an input that is not a run, e.g. a checkpoint path) or "more"
    label: str
    detail: str
    href: str | None
    column: int = 0
    row: int = 0
    current: bool = False
    random: bool = False
    status: str | None = None
    column_x: int = 0  # SVG position of the box's top-left corner
    y: int = 0


@dataclass
class Edge:
    source: str
    target: str
    role: str
    path: str = ""
    label_x: int = 0
    label_y: int = 0


@dataclass
class Graph:
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    width: int = 0
    height: int = 0
    hidden: int = 0  # nodes folded into "+N more"

    def as_json(self) -> dict:
        return {"nodes": [{"key": n.key, "kind": n.kind, "label": n.label, "detail": n.detail, "href": n.href,
                           "column": n.column, "current": n.current, "random_weights": n.random, "status": n.status}
                          for n in self.nodes],
                "edges": [{"from": e.source, "to": e.target, "role": e.role} for e in self.edges],
                "hidden": self.hidden}


def _node(run_id: str, task: str | None, dataset: str | None, status: str | None, random: bool | None,
          run_href) -> Node:
    if task is None:  # named by a config but not a run of this registry (a checkpoint path, a deleted run)
        return Node(run_id, "file", run_id if len(run_id) <= 28 else "…" + run_id[-27:], "not a run in this registry", None)
    return Node(run_id, "run", f"{task} · {run_id[:8]}", f"{dataset or '?'} · {status}", run_href(run_id),
                random=bool(random), status=status)


def build(run: dict, inputs: list[dict], users: list[dict], systems: list[dict], run_href, system_href,
          more_href) -> Graph:
    """The graph of ``run`` (a run_rows.sql row) from its ancestry (run_inputs.sql rows, every
    level), the runs using it (run_users.sql) and the systems it is in (run_systems.sql); the
    ``*_href`` callables make links (``more_href()``: all runs using it)."""
    me = run["run_id"]
    nodes: dict[str, Node] = {me: Node(me, "run", f"{run['task']} · {me[:8]}", f"{run['dataset'] or '?'} · {run['status']}",
                                       run_href(me), current=True, random=bool(run["random_weights"]), status=run["status"])}
    roles: dict[tuple[str, str], list[str]] = {}  # (input, user) → roles, one arrow each
    for e in inputs:
        nodes.setdefault(e["input_id"], _node(e["input_id"], e["input_task"], e["input_dataset"], e["input_status"],
                                              e["input_random"], run_href))
        roles.setdefault((e["input_id"], e["run_id"]), []).append(e["role"])
    children = set()
    for u in users:
        nodes.setdefault(u["run_id"], _node(u["run_id"], u["task"], u["dataset"], u["status"], u["random_weights"], run_href))
        roles.setdefault((me, u["run_id"]), []).append(u["role"])
        children.add(u["run_id"])
    uses = [(source, user, ", ".join(dict.fromkeys(r))) for (source, user), r in roles.items()]
    # Longest chain from each ancestor to the run: relax until nothing moves (a DAG of few nodes).
    distance = {me: 0}
    for _ in range(len(nodes)):
        moved = False
        for source, user, _ in uses:
            if user in distance and source not in children and distance.get(source, -1) < distance[user] + 1:
                distance[source] = distance[user] + 1
                moved = True
        if not moved:
            break
    for key, node in nodes.items():
        node.column = 1 if key in children else -distance.get(key, 1)
    last = 2 if children else 1
    for s in systems:
        key = f"system:{s['system_id']}"
        nodes[key] = Node(key, "system", f"system {s['name']}", f"{s['kind']} · member #{s['rank']}",
                          system_href(s["name"]), column=last)
        uses.append((me, key, "member"))
    graph = Graph()
    by_column: dict[int, list[Node]] = {}
    for node in nodes.values():
        by_column.setdefault(node.column, []).append(node)
    shown: set[str] = set()
    for column, members in sorted(by_column.items()):
        members.sort(key=lambda n: (not n.current, n.label, n.key))
        if len(members) > MAX_PER_COLUMN:
            folded = len(members) - (MAX_PER_COLUMN - 1)
            graph.hidden += folded
            href = more_href() if column == 1 else None
            members = members[:MAX_PER_COLUMN - 1] + [Node(f"more:{column}", "more", f"+{folded} more", "", href,
                                                           column=column)]
        for row, node in enumerate(members):
            node.row = row
            shown.add(node.key)
        graph.nodes.extend(members)
    first = min(n.column for n in graph.nodes)
    rows = max(n.row for n in graph.nodes) + 1
    graph.width = (max(n.column for n in graph.nodes) - first) * COLUMN_W + NODE_W + 2 * PAD
    graph.height = rows * ROW_H + 2 * PAD
    for node in graph.nodes:
        column_rows = sum(1 for n in graph.nodes if n.column == node.column)
        node.column_x = PAD + (node.column - first) * COLUMN_W
        node.y = PAD + node.row * ROW_H + (rows - column_rows) * ROW_H // 2  # centre each column
    at = {n.key: n for n in graph.nodes}
    seen = set()
    for source, target, role in uses:
        if source not in shown or target not in shown or (source, target, role) in seen:
            continue
        seen.add((source, target, role))
        a, b = at[source], at[target]
        x0, y0 = a.column_x + NODE_W, a.y + NODE_H // 2
        x1, y1 = b.column_x, b.y + NODE_H // 2
        bend = max(30, (x1 - x0) // 2)
        graph.edges.append(Edge(source, target, role, f"M{x0},{y0} C{x0 + bend},{y0} {x1 - bend},{y1} {x1},{y1}",
                                (x0 + x1) // 2, (y0 + y1) // 2 - 4))
    return graph
