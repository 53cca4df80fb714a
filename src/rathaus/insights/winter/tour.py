"""A good starting plan: one closed tour over all required links, then cut into vehicle routes.

Street networks of a Bauhof are nearly Eulerian: the best plans drive almost every metre while
salting. So the start is built like a Chinese-postman tour ("route first, cluster second"):

1. OR-Tools CP-SAT chooses the direction of every two-way link and the fewest deadhead
   metres so that at every node as many traversals arrive as leave (a balanced multigraph);
2. at every node arriving and leaving traversals are paired without a forbidden U-turn, and
   the resulting circuits are joined by swapping pairs where they meet;
3. the tour, as a cyclic sequence of salting tasks, is cut into one block per vehicle where
   the cuts are cheapest (dwelling place → first task, last task → depot, one refill detour
   if the salt of a block needs it), within the time limit.

The result is a list of task sequences that :mod:`.solve` hands to OR-Tools routing as its
first solution; deadheads between tasks are always recomputed with :mod:`.paths`, so a pairing
that could not avoid a U-turn is repaired there.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from rathaus.insights.winter.network import Network
from rathaus.insights.winter.paths import INF, Paths

COST_SCALE = 10


def balanced_traversals(network: Network, time_limit_s: float = 5.0) -> list[tuple[int, bool]]:
    """``(arc, salted)`` traversals: each required link once (direction chosen) plus deadhead
    copies, balanced at every node, with the least deadhead length (CP-SAT)."""
    from ortools.sat.python import cp_model

    model = cp_model.CpModel()
    arcs = network.arcs
    balance: dict[str, list] = {n: [] for n in network.nodes}
    chosen: dict[int, list[tuple[int, object]]] = {}
    for link in network.required_links:
        own = [a for a in arcs if a.link == link.index and a.salts]
        if len(own) == 1:
            a = own[0]
            balance[a.tail].append(1)
            balance[a.head].append(-1)
            chosen[link.index] = [(a.index, 1)]
        else:
            x = model.NewBoolVar(f"o{link.index}")
            fwd, bwd = own[0], own[1]
            # x = 1: tail→head (fwd), else head→tail (bwd)
            balance[fwd.tail].append(2 * x - 1)
            balance[fwd.head].append(1 - 2 * x)
            chosen[link.index] = [(fwd.index, x), (bwd.index, x.Not())]
    extra = {}
    for a in arcs:
        y = model.NewIntVar(0, 4, f"y{a.index}")
        extra[a.index] = y
        balance[a.tail].append(y)
        balance[a.head].append(-y)
    for terms in balance.values():
        if terms:
            model.Add(sum(terms) == 0)
    model.Minimize(sum(round(arcs[i].length * COST_SCALE) * y for i, y in extra.items()))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = 7
    status = solver.Solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return []
    out: list[tuple[int, bool]] = []
    for options in chosen.values():
        for arc_index, lit in options:
            if isinstance(lit, int) or solver.BooleanValue(lit):
                out.append((arc_index, True))
    for arc_index, y in extra.items():
        out += [(arc_index, False)] * solver.Value(y)
    return out


class _Union:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[ra] = rb
        return True


def euler_tasks(network: Network, paths: Paths, trav: list[tuple[int, bool]]) -> list[int]:
    """The salted arcs in the order of one closed tour through all traversals ``trav``."""
    arcs = network.arcs
    n = len(trav)
    ins: dict[str, list[int]] = {}
    outs: dict[str, list[int]] = {}
    for i, (a, _s) in enumerate(trav):
        ins.setdefault(arcs[a].head, []).append(i)
        outs.setdefault(arcs[a].tail, []).append(i)

    def allowed(i: int, j: int) -> bool:
        return network.turn_allowed(trav[i][0], trav[j][0])

    succ = [-1] * n
    for node, incoming in ins.items():
        free = list(outs.get(node, []))
        pairs: list[tuple[int, int]] = []
        for i in incoming:
            pick = next((j for j in free if allowed(i, j)), None)
            if pick is None and free:
                j = free[0]
                # swap with an earlier pair so that both turns are allowed
                for k, (i2, j2) in enumerate(pairs):
                    if allowed(i2, j) and allowed(i, j2):
                        pairs[k] = (i2, j)
                        pick = j2
                        free.remove(j)
                        free.append(j2)
                        break
                else:
                    pick = j  # unavoidable here; the deadhead paths repair it later
            if pick is None:
                continue
            free.remove(pick)
            pairs.append((i, pick))
        for i, j in pairs:
            succ[i] = j
    # circuits of the pairing, then merge circuits that meet at a node
    cycle = [-1] * n
    count = 0
    for start in range(n):
        if cycle[start] >= 0 or succ[start] < 0:
            continue
        i = start
        while cycle[i] < 0 and i >= 0:
            cycle[i] = count
            i = succ[i]
        count += 1
    union = _Union(max(count, 1))
    for _node, incoming in ins.items():
        for p in range(len(incoming)):
            for q in range(p + 1, len(incoming)):
                i1, i2 = incoming[p], incoming[q]
                j1, j2 = succ[i1], succ[i2]
                if j1 < 0 or j2 < 0 or cycle[i1] < 0 or cycle[i2] < 0:
                    continue
                if union.find(cycle[i1]) == union.find(cycle[i2]):
                    continue
                if allowed(i1, j2) and allowed(i2, j1):
                    succ[i1], succ[i2] = j2, j1
                    union.union(cycle[i1], cycle[i2])
    # walk every remaining circuit; join them nearest-first
    seen = [False] * n
    circuits: list[list[int]] = []
    for start in range(n):
        if seen[start] or succ[start] < 0:
            continue
        circuit, i = [], start
        while i >= 0 and not seen[i]:
            seen[i] = True
            circuit.append(i)
            i = succ[i]
        tasks = [trav[k][0] for k in circuit if trav[k][1]]
        if tasks:
            circuits.append(tasks)
    if not circuits:
        return []
    # the other circuits go into the largest one where they cost least (cheapest insertion)
    circuits.sort(key=len, reverse=True)
    main = circuits.pop(0)

    def gap(a: int, b: int) -> float:
        return paths.deadhead_to_arc(a, arcs[a].head, b)[0]

    for circ in circuits:
        best: tuple[float, int, int] | None = None
        for k in range(len(main)):
            a, b = main[k], main[(k + 1) % len(main)]
            base = gap(a, b)
            for r in range(len(circ)):
                first, last = circ[r], circ[r - 1]
                cost = gap(a, first) + gap(last, b) - base
                if best is None or cost < best[0]:
                    best = (cost, k, r)
        if best is None:
            continue
        _cost, k, r = best
        main = main[: k + 1] + circ[r:] + circ[:r] + main[k + 1 :]
    return main


@dataclass
class _Block:
    vehicle: int
    start: int  # index into the doubled task list
    end: int  # inclusive
    length: float
    time: float
    refill_after: int | None  # index after which a refill detour is made


def split_tour(
    network: Network, paths: Paths, tasks: list[int], end_at_depot: bool
) -> list[list[tuple[str, int | str]]] | None:
    """Cut the cyclic task sequence into one block per vehicle (see module doc). Returns per
    vehicle a list of ``("task", arc)`` and ``("refill", depot)``; ``None`` if no cut keeps
    every route within the time limit and the salt."""
    m = len(tasks)
    if m == 0:
        return None
    arcs, links = network.arcs, network.links
    seq = tasks + tasks
    svc_len = [arcs[a].length for a in seq]
    svc_time = [arcs[a].time for a in seq]
    dem = [links[arcs[a].link].demand for a in seq]
    gap_len, gap_time, via_len, via_time, via_depot = [], [], [], [], []
    for t in range(2 * m - 1):
        a, b = seq[t], seq[t + 1]
        d_len, d_time, _ = paths.deadhead_to_arc(a, arcs[a].head, b)
        gap_len.append(d_len)
        gap_time.append(d_time)
        depot, r_len, r_time, way = paths.nearest_depot(a, arcs[a].head)
        if depot is None:
            via_len.append(INF)
            via_time.append(INF)
            via_depot.append("")
            continue
        state = way[-1] if way else a
        o_len, o_time, _ = paths.deadhead_to_arc(state, depot, b)
        via_len.append(r_len + o_len - d_len)
        via_time.append(r_time + o_time - d_time)
        via_depot.append(depot)
    gap_len.append(0.0)
    gap_time.append(0.0)
    via_len.append(INF)
    via_time.append(INF)
    via_depot.append("")
    p_len, p_time, p_dem = [0.0], [0.0], [0.0]
    for t in range(2 * m):
        p_len.append(p_len[-1] + svc_len[t] + gap_len[t])
        p_time.append(p_time[-1] + svc_time[t] + gap_time[t])
        p_dem.append(p_dem[-1] + dem[t])
    nv = len(network.vehicles)
    start_len = [[0.0] * m for _ in range(nv)]
    start_time = [[0.0] * m for _ in range(nv)]
    for v, vehicle in enumerate(network.vehicles):
        for t in range(m):
            d_len, d_time, _ = paths.deadhead_to_arc(None, vehicle.home, seq[t])
            start_len[v][t], start_time[v][t] = d_len, d_time
    end_len, end_time = [0.0] * m, [0.0] * m
    if end_at_depot:
        for t in range(m):
            _d, e_len, e_time, _w = paths.nearest_depot(seq[t], arcs[seq[t]].head)
            end_len[t], end_time[t] = e_len, e_time
    # sparse table: index of the cheapest refill detour in any range of positions
    table = [list(range(len(via_len)))]
    width = 1
    while 2 * width <= len(via_len):
        prev = table[-1]
        table.append(
            [
                prev[k] if via_len[prev[k]] <= via_len[prev[k + width]] else prev[k + width]
                for k in range(len(via_len) - 2 * width + 1)
            ]
        )
        width *= 2

    def range_min(lo: int, hi: int) -> int:
        level = (hi - lo + 1).bit_length() - 1
        a, b = table[level][lo], table[level][hi - (1 << level) + 1]
        return a if via_len[a] <= via_len[b] else b

    refill_min = min((d.refill for d in network.depots), default=0.0)
    limit = network.max_time + 1e-9

    def block(v: int, i: int, j: int) -> _Block | None:
        """Vehicle ``v`` salting tasks ``i..j`` (doubled indices)."""
        length = start_len[v][i % m] + (p_len[j] - p_len[i]) + svc_len[j] + end_len[j % m]
        time = start_time[v][i % m] + (p_time[j] - p_time[i]) + svc_time[j] + end_time[j % m]
        if time > limit:
            return None
        need = p_dem[j + 1] - p_dem[i]
        cap = network.vehicles[v].capacity
        if need <= cap + 1e-9:
            return _Block(v, i, j, length, time, None)
        # one refill detour after task t: salt before ≤ capacity, after ≤ refill
        hi = bisect.bisect_right(p_dem, p_dem[i] + cap + 1e-9) - 2
        lo = bisect.bisect_left(p_dem, p_dem[j + 1] - min(cap, refill_min) - 1e-9) - 1
        lo, hi = max(lo, i), min(hi, j - 1)
        if lo > hi:
            return None
        best = range_min(lo, hi)
        if via_len[best] == INF or time + via_time[best] > limit:
            return None
        return _Block(v, i, j, length + via_len[best], time + via_time[best], best)

    best_plan: list[_Block] | None = None
    best_total = INF
    if nv == 1:
        for r in range(m):
            b = block(0, r, r + m - 1)
            if b is not None and b.length < best_total:
                best_plan, best_total = [b], b.length
    else:
        orders = [list(range(nv))]
        if nv == 2:
            orders.append([1, 0])
        for r in range(m):
            for order in orders:
                if nv == 2:
                    for s in range(r + 1, r + m):
                        b1 = block(order[0], r, s - 1)
                        if b1 is None:
                            break  # longer first blocks only take longer
                        b2 = block(order[1], s, r + m - 1)
                        if b2 is not None and b1.length + b2.length < best_total:
                            best_plan, best_total = [b1, b2], b1.length + b2.length
                    continue
                plan, i = [], r
                for k, v in enumerate(order):
                    last = k == nv - 1
                    j = r + m - 1 if last else i
                    if not last:
                        while j + 1 < r + m and block(v, i, j + 1) is not None:
                            j += 1
                    b = block(v, i, j)
                    if b is None:
                        plan = []
                        break
                    plan.append(b)
                    i = j + 1
                    if i >= r + m:
                        break
                if plan and plan[-1].end == r + m - 1:
                    total = sum(b.length for b in plan)
                    if total < best_total:
                        best_plan, best_total = plan, total
    if best_plan is None:
        return None
    result: list[list[tuple[str, int | str]]] = [[] for _ in range(nv)]
    for b in best_plan:
        items: list[tuple[str, int | str]] = []
        for t in range(b.start, b.end + 1):
            items.append(("task", seq[t]))
            if b.refill_after == t:
                items.append(("refill", via_depot[t]))
        result[b.vehicle] = items
    return result
