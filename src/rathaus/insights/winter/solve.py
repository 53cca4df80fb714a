"""The planner: required links become tasks of an OR-Tools vehicle routing model.

Transformation (the usual one for capacitated arc routing):

- every direction in which a required link may be salted is a task node (a two-way link gives
  two nodes of which exactly one is visited: an OR-Tools disjunction);
- between two tasks the vehicle deadheads on the shortest path that obeys the U-turn rules
  (:mod:`.paths`, computed on the turn graph, so the turn at the end of one task and at the
  start of the next are checked too);
- each vehicle starts at its dwelling place; its end is the nearest depot after the last task
  (the way home is off duty), or the last task itself with ``end_at_depot=False``;
- refills are optional "depot visit" nodes (a few copies per depot) that give the salt
  dimension back: salt used since the last refill stays within the capacity, a visit lowers it
  by the depot's ``refill`` (the slack absorbs the rest: ``min(capacity, load + refill)``);
- a time dimension keeps every route within ``max_time``; priority classes (if any) are a
  dimension whose value may only grow along a route.

The objective is the total length (as in the problem statement). The first solution is the
tour of :mod:`.tour` (a balanced Euler tour cut into vehicle routes), or else nearest task
first; OR-Tools improves it with guided local search until the time limit. A required link
may stay unplanned only at a penalty far above any length, so OR-Tools always has a solution
to improve; one that leaves a link unsalted is reported as infeasible. The routes are expanded
to links and checked by :func:`rathaus.insights.winter.evaluate.evaluate`: the figures
reported are the evaluator's, never the model's. The search is deterministic; only the time
limit decides where it stops.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rathaus.core.errors import RathausError
from rathaus.insights.winter.evaluate import Evaluation, Route, Step, evaluate
from rathaus.insights.winter.network import Network
from rathaus.insights.winter.paths import INF, Paths

LENGTH_SCALE = 100  # model lengths as integers (centimetres for metres)
TIME_SCALE = 1000  # model times as integers, rounded up so a model-feasible route stays feasible
BIG = 10**12
UNPLANNED_PENALTY = 10**11  # per required link left out (≫ any route length)
MIN_TIME_LIMIT_S = 1.0
MAX_TIME_LIMIT_S = 600.0

Progress = Callable[[dict[str, Any]], None]


@dataclass
class SolveOptions:
    time_limit_s: float = 60.0
    end_at_depot: bool = True
    use_constructive_start: bool = True


@dataclass
class SolveResult:
    routes: list[Route]
    evaluation: Evaluation
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Place:
    """A node of the routing model."""

    kind: str  # start, end, task, refill
    vehicle: int = -1
    arc: int = -1  # task: the arc salted
    depot: str = ""  # refill


class _Model:
    """The places of the routing model and the distances between them."""

    def __init__(self, network: Network, paths: Paths, end_at_depot: bool) -> None:
        self.network, self.paths, self.end_at_depot = network, paths, end_at_depot
        nv = len(network.vehicles)
        self.places: list[_Place] = [_Place("start", vehicle=v) for v in range(nv)]
        self.places += [_Place("end", vehicle=v) for v in range(nv)]
        self.task_groups: list[list[int]] = []
        for link in network.required_links:
            group = []
            for arc in network.arcs:
                if arc.link == link.index and arc.salts:
                    group.append(len(self.places))
                    self.places.append(_Place("task", arc=arc.index))
            self.task_groups.append(group)
        demand = sum(link.demand for link in network.required_links)
        for depot in network.depots:
            copies = min(40, math.ceil(demand / depot.refill) + nv)
            self.places += [_Place("refill", depot=depot.label)] * copies
        self.n = len(self.places)

    def service(self, place: _Place) -> tuple[float, float]:
        if place.kind != "task":
            return 0.0, 0.0
        arc = self.network.arcs[place.arc]
        return arc.length, arc.time

    def position(self, place: _Place) -> tuple[int | None, str]:
        """The state after a place: ``(arc just driven, node)``."""
        if place.kind == "task":
            arc = self.network.arcs[place.arc]
            return arc.index, arc.head
        if place.kind == "refill":
            return None, place.depot
        return None, self.network.vehicles[place.vehicle].home

    def leg(self, i: int, j: int) -> tuple[float, float]:
        """Length and time from place ``i`` (its service included) to place ``j``."""
        a, b = self.places[i], self.places[j]
        if b.kind == "start" or a.kind == "end":
            return 0.0, 0.0
        if a.kind == "start" and b.kind == "end":
            return (0.0, 0.0) if a.vehicle == b.vehicle else (INF, INF)
        s_len, s_time = self.service(a)
        state, node = self.position(a)
        if b.kind == "task":
            d_len, d_time, _ = self.paths.deadhead_to_arc(state, node, b.arc)
        elif b.kind == "refill":
            d_len, d_time, _ = self.paths.deadhead_to_node(state, node, b.depot)
        elif a.kind == "refill" or not self.end_at_depot:
            d_len, d_time = 0.0, 0.0
        else:
            _depot, d_len, d_time, _ = self.paths.nearest_depot(state, node)
        return s_len + d_len, s_time + d_time

    def matrices(self) -> tuple[list[list[int]], list[list[int]]]:
        cost = [[0] * self.n for _ in range(self.n)]
        times = [[0] * self.n for _ in range(self.n)]
        for i in range(self.n):
            row_c, row_t = cost[i], times[i]
            for j in range(self.n):
                if i == j:
                    continue
                length, duration = self.leg(i, j)
                if length == INF:
                    row_c[j] = row_t[j] = BIG
                else:
                    row_c[j] = round(length * LENGTH_SCALE)
                    row_t[j] = math.ceil(duration * TIME_SCALE - 1e-6)
        return cost, times


def _expand(model: _Model, vehicle: int, sequence: list[int]) -> Route:
    """The links driven for a sequence of places (tasks and refills) of one vehicle."""
    net, paths = model.network, model.paths
    home = net.vehicles[vehicle].home
    state: int | None = None
    node = home
    steps: list[Step] = []

    def drive(arcs: list[int]) -> None:
        for a in arcs:
            arc = net.arcs[a]
            steps.append(Step(arc.tail, arc.head, False))

    for index in sequence:
        place = model.places[index]
        if place.kind == "task":
            _l, _t, way = paths.deadhead_to_arc(state, node, place.arc)
            if _l == INF:
                raise RathausError("Interner Fehler: Strecke im Modell nicht erreichbar.")
            drive(way)
            arc = net.arcs[place.arc]
            steps.append(Step(arc.tail, arc.head, True))
            state, node = arc.index, arc.head
        elif place.kind == "refill":
            _l, _t, way = paths.deadhead_to_node(state, node, place.depot)
            drive(way)
            if way:
                state = way[-1]
            node = place.depot
    if steps and model.end_at_depot and node not in net.depot_refill:
        _depot, _l, _t, way = paths.nearest_depot(state, node)
        drive(way)
    return Route(net.vehicles[vehicle].id, steps)


def _constructive(model: _Model, limit: float) -> list[list[int]]:
    """Nearest task first, vehicle after vehicle; refill at the nearest depot when the salt
    would not suffice; close a route when the next task would break the time limit. Tasks left
    over stay unplanned (OR-Tools may insert them; if not, the evaluator names them)."""
    net, paths = model.network, model.paths
    refill_places: dict[str, list[int]] = {}
    for i, place in enumerate(model.places):
        if place.kind == "refill":
            refill_places.setdefault(place.depot, []).append(i)
    open_groups = {g: group for g, group in enumerate(model.task_groups)}
    routes: list[list[int]] = [[] for _ in net.vehicles]
    for v, vehicle in enumerate(net.vehicles):
        state: int | None = None
        node = vehicle.home
        clock, load = 0.0, vehicle.capacity
        while open_groups:
            best = None
            tree = paths.tree(state, node)
            for g, group in open_groups.items():
                for place_index in group:
                    arc = net.arcs[model.places[place_index].arc]
                    if (
                        state is None
                        and arc.tail == node
                        or state is not None
                        and net.arcs[state].head == arc.tail
                        and (net.turn_allowed(state, arc.index))
                    ):
                        d_len = d_time = 0.0
                    else:
                        if tree.length[arc.index] == INF:
                            continue
                        d_len = tree.length[arc.index] - arc.length
                        d_time = tree.time[arc.index] - arc.time
                    key = (d_len, d_time, g)
                    if best is None or key < best[0]:
                        best = (key, g, place_index, d_time)
            if best is None:
                break
            (_d_len, _d_time, _g), g, place_index, d_time = best
            arc = net.arcs[model.places[place_index].arc]
            demand = net.links[arc.link].demand
            if demand > load + 1e-9:
                depot, _l, r_time, way = paths.nearest_depot(state, node)
                if depot is None or not refill_places.get(depot):
                    break
                routes[v].append(refill_places[depot].pop())
                clock += r_time
                load = min(vehicle.capacity, load + net.depot_refill[depot])
                state, node = (way[-1] if way else state), depot
                continue
            finish = clock + d_time + arc.time
            back = 0.0
            if model.end_at_depot:
                _dep, _l, back, _w = paths.nearest_depot(arc.index, arc.head)
            if finish + back > limit:
                break  # this vehicle is full; left-over tasks stay unplanned for OR-Tools
            routes[v].append(place_index)
            del open_groups[g]
            clock, load = finish, load - demand
            state, node = arc.index, arc.head
            if node in net.depot_refill:
                load = min(vehicle.capacity, load + net.depot_refill[node])
    return routes


def _tour_start(
    model: _Model, network: Network, paths: Paths, end_at_depot: bool
) -> list[list[int]]:
    from rathaus.insights.winter.tour import balanced_traversals, euler_tasks, split_tour

    traversals = balanced_traversals(network)
    if not traversals:
        return []
    tasks = euler_tasks(network, paths, traversals)
    plan = split_tour(network, paths, tasks, end_at_depot)
    if plan is None:
        return []
    task_place = {p.arc: i for i, p in enumerate(model.places) if p.kind == "task"}
    refill_places: dict[str, list[int]] = {}
    for i, place in enumerate(model.places):
        if place.kind == "refill":
            refill_places.setdefault(place.depot, []).append(i)
    sequences = []
    for items in plan:
        seq = []
        for kind, value in items:
            if kind == "task":
                seq.append(task_place[value])
            elif refill_places.get(value):
                seq.append(refill_places[value].pop())
        sequences.append(seq)
    return sequences


def _starts(
    model: _Model, network: Network, paths: Paths, options: SolveOptions, priorities: bool
) -> list[tuple[str, Callable[[], list[list[int]]]]]:
    """First solutions to try, best first (see module doc and :mod:`.tour`)."""
    if not options.use_constructive_start or priorities:
        return []
    return [
        (
            "Rundtour über alle Strecken, aufgeteilt (CP-SAT + Euler)",
            lambda: _tour_start(model, network, paths, options.end_at_depot),
        ),
        ("nächste Strecke zuerst", lambda: _constructive(model, network.max_time)),
    ]


def solve(
    network: Network,
    options: SolveOptions | None = None,
    *,
    on_progress: Progress | None = None,
) -> SolveResult:
    """Plan routes for every vehicle (see module doc); returns routes, their evaluation by the
    cost model, and solver statistics."""
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    options = options or SolveOptions()
    limit_s = min(max(options.time_limit_s, MIN_TIME_LIMIT_S), MAX_TIME_LIMIT_S)
    began = time.monotonic()
    paths = Paths(network)
    model = _Model(network, paths, options.end_at_depot)
    cost, times = model.matrices()
    prepared_s = time.monotonic() - began

    nv = len(network.vehicles)
    manager = pywrapcp.RoutingIndexManager(model.n, nv, list(range(nv)), list(range(nv, 2 * nv)))
    routing = pywrapcp.RoutingModel(manager)
    cost_cb = routing.RegisterTransitMatrix(cost)
    routing.SetArcCostEvaluatorOfAllVehicles(cost_cb)

    time_cb = routing.RegisterTransitMatrix(times)
    time_cap = math.floor(network.max_time * TIME_SCALE + 1e-6)
    routing.AddDimension(time_cb, 0, time_cap, True, "Zeit")

    salt_scale = 1000
    salt = [0] * model.n
    refills = [0] * model.n
    for i, place in enumerate(model.places):
        if place.kind == "task":
            salt[i] = math.ceil(
                network.links[network.arcs[place.arc].link].demand * salt_scale - 1e-6
            )
        elif place.kind == "refill":
            refills[i] = math.floor(network.depot_refill[place.depot] * salt_scale + 1e-6)
            salt[i] = -refills[i]
    salt_cb = routing.RegisterUnaryTransitVector(salt)
    capacities = [math.floor(v.capacity * salt_scale + 1e-6) for v in network.vehicles]
    routing.AddDimensionWithVehicleCapacity(
        salt_cb, max(refills) if any(refills) else 0, capacities, True, "Salz"
    )
    salt_dim = routing.GetDimensionOrDie("Salz")

    priorities = network.has_priorities
    if priorities:
        top = max(link.priority or 1 for link in network.links)
        zero_cb = routing.RegisterUnaryTransitVector([0] * model.n)
        routing.AddDimension(zero_cb, top, top, False, "Prioritaet")
        prio_dim = routing.GetDimensionOrDie("Prioritaet")

    for i, place in enumerate(model.places):
        if place.kind in ("start", "end"):
            continue
        index = manager.NodeToIndex(i)
        if place.kind != "refill":
            salt_dim.SlackVar(index).SetValue(0)
        if place.kind == "refill":
            routing.AddDisjunction([index], 0)
        if priorities and place.kind == "task":
            p = network.links[network.arcs[place.arc].link].priority or 1
            prio_dim.CumulVar(index).SetRange(p, p)
    # A task may stay unplanned at a penalty far above any length: OR-Tools then always has a
    # solution to improve, and one that leaves a link unsalted is reported as infeasible.
    for group in model.task_groups:
        routing.AddDisjunction([manager.NodeToIndex(i) for i in group], UNPLANNED_PENALTY)

    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    remaining = max(0.5, limit_s - (time.monotonic() - began))
    params.time_limit.FromMilliseconds(int(remaining * 1000))

    found: list[tuple[float, float]] = []
    last_report = [0.0]

    def at_solution() -> None:
        value = routing.CostVar().Max() / LENGTH_SCALE
        now = time.monotonic() - began
        found.append((now, value))
        if on_progress is not None and now - last_report[0] >= 2.0:
            last_report[0] = now
            on_progress(
                {
                    "elapsed_s": now,
                    "limit_s": limit_s,
                    "best_length": value,
                    "solutions": len(found),
                }
            )

    routing.AddAtSolutionCallback(at_solution)

    start_kind = "OR-Tools (PATH_CHEAPEST_ARC)"
    assignment = None
    routing.CloseModelWithParameters(params)
    for kind, make in _starts(model, network, paths, options, priorities):
        sequences = make()
        if not sequences:
            continue
        start = routing.ReadAssignmentFromRoutes(
            [[manager.NodeToIndex(i) for i in r] for r in sequences], True
        )
        if start is not None:
            start_kind = kind
            remaining = max(0.5, limit_s - (time.monotonic() - began))
            params.time_limit.FromMilliseconds(int(remaining * 1000))
            assignment = routing.SolveFromAssignmentWithParameters(start, params)
            break
    if assignment is None:
        assignment = routing.SolveWithParameters(params)
    if assignment is None:
        # No plan meets every rule (usually: too little time for the fleet). Show the best
        # effort of the constructive heuristic with its violations instead of nothing.
        sequences = _constructive(model, network.max_time)
        status = "keine zulässige Lösung"
    else:
        sequences = []
        for v in range(nv):
            index = routing.Start(v)
            seq = []
            while not routing.IsEnd(index):
                node = manager.IndexToNode(index)
                if model.places[node].kind in ("task", "refill"):
                    seq.append(node)
                index = assignment.Value(routing.NextVar(index))
            sequences.append(seq)
        status = "gelöst"
    routes = [_expand(model, v, seq) for v, seq in enumerate(sequences)]
    routes = [r for r in routes if r.steps]
    evaluation = evaluate(network, routes, end_at_depot=options.end_at_depot)
    stats = {
        "solver": "OR-Tools Routing (Guided Local Search)",
        "start": start_kind,
        "status": status,
        "time_limit_s": limit_s,
        "prepare_s": round(prepared_s, 2),
        "wall_s": round(time.monotonic() - began, 2),
        "solutions": len(found),
        "first_length": found[0][1] if found else None,
        "model_length": (assignment.ObjectiveValue() / LENGTH_SCALE) if assignment else None,
        "tasks": sum(len(g) for g in model.task_groups),
        "model_nodes": model.n,
    }
    return SolveResult(routes, evaluation, stats)
