"""Reading routes from files, so that any plan can be checked with the same cost model.

Three formats:

- the ROAR-NET solution with arcs: ``[{"vehicle": "1", "route": [{"arc": ["2", "23"],
  "salted": false}, …]}, …]`` — read as it is;
- the ROAR-NET solution with nodes: ``[{"id": "1", "route": ["2", "23", …]}, …]``;
- a practitioner's plain text like ``kerteminde_solution_mandrup.txt``: one route per
  vehicle, the node labels separated by commas; a route may wrap over several lines (a line
  ending with a comma continues), a line without a trailing comma ends the route. A node
  written twice in a row is a stop (in Kerteminde ``… 2, 1, 1, 2 …``: reloading at depot 1).
  A label at the very end of a route that is not in the network (``294`` in the Kerteminde
  file) is read as an end mark and reported in the notes.

Node sequences do not say where salt is spread. :func:`assign_salting` decides it for the
whole plan with OR-Tools CP-SAT: every required link is salted on exactly one of its
traversals in a direction that allows salting, such that no vehicle ever runs out of salt
(refills at depots as in :mod:`.evaluate`), preferring the earliest traversal. This changes
no time or length: it only finds the salting that makes the routes work, if there is one.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rathaus.core.errors import RathausError
from rathaus.insights.winter.evaluate import Route, Step
from rathaus.insights.winter.network import Network

SCALE = 1000  # salt amounts as integers for CP-SAT


class RouteFileError(RathausError):
    exit_code = 2
    http_status = 422


def parse_node_text(text: str) -> list[list[str]]:
    """Node sequences of a practitioner's text file (see module doc)."""
    routes: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        current.extend(t for t in re.split(r"[,;\s]+", stripped) if t)
        if not stripped.endswith((",", ";")):
            routes.append(current)
            current = []
    if current:
        routes.append(current)
    if not routes:
        raise RouteFileError("Die Routendatei enthält keine Route (Knotenfolgen erwartet).")
    return routes


def _vehicle_for(network: Network, sequence: list[str], taken: set[str]) -> str | None:
    for v in network.vehicles:
        if v.id not in taken and sequence and v.home == sequence[0]:
            return v.id
    for v in network.vehicles:
        if v.id not in taken:
            return v.id
    return None


def routes_from_nodes(
    network: Network, sequences: list[tuple[str | None, list[str]]]
) -> tuple[list[Route], list[str]]:
    """Routes (with salting decided by :func:`assign_salting`) from node sequences; a vehicle
    id of ``None`` is matched by dwelling place, then in order. Returns the routes and German
    notes about what was read."""
    notes: list[str] = []
    known = set(network.nodes)
    taken: set[str] = set()
    plain: list[tuple[str, list[tuple[str, str]]]] = []
    for number, (vehicle, nodes) in enumerate(sequences, start=1):
        nodes = [str(n).strip() for n in nodes if str(n).strip()]
        if nodes and nodes[-1] not in known:
            notes.append(
                f"Route {number}: der letzte Eintrag „{nodes[-1]}“ ist kein Knoten des Netzes "
                "und wurde als Endmarke gelesen."
            )
            nodes = nodes[:-1]
        unknown = sorted({n for n in nodes if n not in known})
        if unknown:
            raise RouteFileError(
                f"Route {number} enthält unbekannte Knoten: {', '.join(unknown[:10])}."
            )
        if vehicle is None:
            vehicle = _vehicle_for(network, nodes, taken)
            if vehicle is None:
                raise RouteFileError(
                    f"Route {number}: mehr Routen als Fahrzeuge ({len(network.vehicles)})."
                )
        taken.add(vehicle)
        pairs: list[tuple[str, str]] = []
        stops = 0
        for a, b in zip(nodes, nodes[1:], strict=False):
            if a == b:
                stops += 1
                continue
            pairs.append((a, b))
        if stops:
            notes.append(
                f"Route {number} (Fahrzeug {vehicle}): {stops} doppelt genannte Knoten als "
                "Halt gelesen."
            )
        plain.append((vehicle, pairs))
    salted = assign_salting(network, plain)
    if salted is None:
        notes.append(
            "Es gibt keine Verteilung des Streuens auf die Durchfahrten, bei der das Salz "
            "reicht; gestreut wird bei der ersten möglichen Durchfahrt."
        )
        salted = _first_traversal(network, plain)
    routes = [
        Route(vehicle, [Step(t, h, (r, i) in salted) for i, (t, h) in enumerate(pairs)])
        for r, (vehicle, pairs) in enumerate(plain)
    ]
    return routes, notes


def _salt_options(network: Network, tail: str, head: str) -> list[int]:
    """Required links that driving ``tail→head`` can salt."""
    arcs = network.arcs
    return sorted(
        {arcs[a].link for a in network.arcs_by_pair.get((tail, head), []) if arcs[a].salts}
    )


def _first_traversal(
    network: Network, plain: list[tuple[str, list[tuple[str, str]]]]
) -> set[tuple[int, int]]:
    done: set[int] = set()
    salted: set[tuple[int, int]] = set()
    for r, (_vehicle, pairs) in enumerate(plain):
        for i, (t, h) in enumerate(pairs):
            for link in _salt_options(network, t, h):
                if link not in done:
                    done.add(link)
                    salted.add((r, i))
                    break
    return salted


def assign_salting(
    network: Network,
    plain: list[tuple[str, list[tuple[str, str]]]],
    *,
    time_limit_s: float = 10.0,
) -> set[tuple[int, int]] | None:
    """``(route, step)`` pairs to salt so that every required link driven is salted once and
    no vehicle runs short of salt; ``None`` when no such choice exists (see module doc)."""
    from ortools.sat.python import cp_model

    model = cp_model.CpModel()
    refill = {d: round(r * SCALE) for d, r in network.depot_refill.items()}
    vehicles = network.vehicle_by_id
    choices: dict[int, list[Any]] = {}
    var_of: dict[tuple[int, int], Any] = {}
    weights: list[tuple[Any, int]] = []
    position = 0
    for r, (vehicle_id, pairs) in enumerate(plain):
        capacity = round(vehicles[vehicle_id].capacity * SCALE)
        load = model.NewConstant(capacity)
        segment: list[Any] = []
        for i, (t, h) in enumerate(pairs):
            position += 1
            options = _salt_options(network, t, h)
            if options:
                # With parallel required links one traversal salts at most one of them.
                chosen = []
                for link in options:
                    x = model.NewBoolVar(f"x{r}_{i}_{link}")
                    choices.setdefault(link, []).append(x)
                    chosen.append(x)
                    demand = round(network.links[link].demand * SCALE)
                    segment.append(demand * x)
                    weights.append((x, position))
                model.Add(sum(chosen) <= 1)
                var_of[(r, i)] = chosen
            if h in refill:
                before = model.NewIntVar(0, capacity, f"l{r}_{i}")
                model.Add(before == load - sum(segment))
                after = model.NewIntVar(0, capacity, f"f{r}_{i}")
                model.AddMinEquality(after, [before + refill[h], model.NewConstant(capacity)])
                load, segment = after, []
        if segment:
            model.Add(sum(segment) <= load)
    for xs in choices.values():
        model.AddExactlyOne(xs)
    model.Minimize(sum(p * x for x, p in weights))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = 1
    status = solver.Solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    return {key for key, xs in var_of.items() if any(solver.Value(x) for x in xs)}


def parse_route_file(network: Network, data: bytes | str) -> tuple[list[Route], list[str]]:
    """Routes from a route file in any of the three formats (see module doc)."""
    text = data.decode("utf-8-sig", errors="replace") if isinstance(data, bytes) else data
    stripped = text.strip()
    if not stripped:
        raise RouteFileError("Die Routendatei ist leer.")
    if stripped[0] not in "[{":
        return routes_from_nodes(network, [(None, seq) for seq in parse_node_text(text)])
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise RouteFileError(
            f"Die Routendatei ist kein gültiges JSON (Zeile {exc.lineno}: {exc.msg})."
        ) from None
    if isinstance(value, dict):
        value = value.get("routes", [value])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise RouteFileError("Erwartet wird eine Liste von Routen (ROAR-NET-Lösungsformat).")
    if all("vehicle" in v for v in value):
        routes = []
        for number, item in enumerate(value, start=1):
            steps = []
            for k, s in enumerate(item.get("route") or [], start=1):
                arc = s.get("arc") if isinstance(s, dict) else None
                if not isinstance(arc, list) or len(arc) != 2:
                    raise RouteFileError(
                        f"Route {number}, Schritt {k}: das Feld „arc“ mit zwei Knoten fehlt."
                    )
                steps.append(Step(str(arc[0]), str(arc[1]), bool(s.get("salted"))))
            routes.append(Route(str(item["vehicle"]), steps))
        return routes, []
    sequences = []
    for number, item in enumerate(value, start=1):
        nodes = item.get("route")
        if not isinstance(nodes, list):
            raise RouteFileError(f"Route {number}: das Feld „route“ (Knotenliste) fehlt.")
        vid = item.get("id")
        sequences.append((str(vid) if vid is not None else None, [str(n) for n in nodes]))
    return routes_from_nodes(network, sequences)
