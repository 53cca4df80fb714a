"""Shortest deadhead paths that obey the U-turn rules.

A U-turn (driving ``u→v`` and straight back ``v→u``) is allowed only at the nodes in ``U``, so
the shortest way on depends on the link just driven. The search therefore runs on the arcs
(the "turn graph"): a state is the arc last driven, and ``b`` may follow ``a`` when
:meth:`Network.turn_allowed` says so. Paths are shortest by length, ties by time; the time of
the chosen path is carried along.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from rathaus.insights.winter.network import Network

INF = float("inf")


@dataclass(frozen=True)
class Tree:
    """Shortest paths from one source: ``length[b]``/``time[b]`` include arc ``b`` itself;
    ``pred[b]`` is the arc before ``b`` on the path (``-1`` at the first arc)."""

    length: list[float]
    time: list[float]
    pred: list[int]

    def path_to(self, arc: int) -> list[int]:
        """Arcs from the first one after the source up to ``arc`` (inclusive)."""
        if self.length[arc] == INF:
            raise ValueError(f"arc {arc} unreachable")
        path = [arc]
        while self.pred[path[-1]] >= 0:
            path.append(self.pred[path[-1]])
        path.reverse()
        return path


class Paths:
    """Shortest U-turn-respecting paths of ``network``, computed on demand and cached."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self._from_arc: dict[int, Tree] = {}
        self._from_node: dict[str, Tree] = {}
        self.depots = [d.label for d in network.depots]

    def _search(self, first: list[tuple[int, int]]) -> Tree:
        """Dijkstra over arcs; ``first`` holds ``(arc, pred)`` of the arcs that may start."""
        arcs = self.network.arcs
        n = len(arcs)
        length, time, pred = [INF] * n, [INF] * n, [-1] * n
        heap: list[tuple[float, float, int]] = []
        for arc, before in first:
            a = arcs[arc]
            if (a.length, a.time) < (length[arc], time[arc]):
                length[arc], time[arc], pred[arc] = a.length, a.time, before
                heapq.heappush(heap, (a.length, a.time, arc))
        out_arcs, turn_allowed = self.network.out_arcs, self.network.turn_allowed
        while heap:
            d_len, d_time, a = heapq.heappop(heap)
            if (d_len, d_time) > (length[a], time[a]):
                continue
            for b in out_arcs[arcs[a].head]:
                if not turn_allowed(a, b):
                    continue
                nb = arcs[b]
                cand = (d_len + nb.length, d_time + nb.time)
                if cand < (length[b], time[b]):
                    length[b], time[b], pred[b] = cand[0], cand[1], a
                    heapq.heappush(heap, (cand[0], cand[1], b))
        return Tree(length, time, pred)

    def from_arc(self, arc: int) -> Tree:
        """Paths after driving ``arc`` (the turn rule applies at its head)."""
        tree = self._from_arc.get(arc)
        if tree is None:
            net = self.network
            first = [(b, -1) for b in net.out_arcs[net.arcs[arc].head] if net.turn_allowed(arc, b)]
            tree = self._from_arc[arc] = self._search(first)
        return tree

    def from_node(self, node: str) -> Tree:
        """Paths leaving ``node`` in any direction (a start at the dwelling place or a depot)."""
        tree = self._from_node.get(node)
        if tree is None:
            tree = self._from_node[node] = self._search(
                [(b, -1) for b in self.network.out_arcs[node]]
            )
        return tree

    # -- distances between the places of a route ------------------------------------------------

    def tree(self, state: int | None, node: str) -> Tree:
        """Paths from the current position: after arc ``state``, or standing at ``node``."""
        return self.from_node(node) if state is None else self.from_arc(state)

    def deadhead_to_arc(
        self, state: int | None, node: str, target: int
    ) -> tuple[float, float, list[int]]:
        """Deadhead ``(length, time, arcs)`` from the current position to the start of
        ``target``; the arcs exclude ``target``. ``(INF, INF, [])`` when there is no way."""
        net = self.network
        t = net.arcs[target]
        if state is None:
            if t.tail == node:
                return 0.0, 0.0, []
        elif net.arcs[state].head == t.tail and net.turn_allowed(state, target):
            return 0.0, 0.0, []
        tree = self.tree(state, node)
        if tree.length[target] == INF:
            return INF, INF, []
        path = tree.path_to(target)[:-1]
        return tree.length[target] - t.length, tree.time[target] - t.time, path

    def deadhead_to_node(
        self, state: int | None, node: str, target: str
    ) -> tuple[float, float, list[int]]:
        """Deadhead ``(length, time, arcs)`` from the current position to node ``target``."""
        if (state is None and node == target) or (
            state is not None and self.network.arcs[state].head == target
        ):
            return 0.0, 0.0, []
        tree = self.tree(state, node)
        best = min(
            self.network.in_arcs[target],
            key=lambda e: (tree.length[e], tree.time[e]),
            default=None,
        )
        if best is None or tree.length[best] == INF:
            return INF, INF, []
        return tree.length[best], tree.time[best], tree.path_to(best)

    def nearest_depot(
        self, state: int | None, node: str
    ) -> tuple[str | None, float, float, list[int]]:
        """The depot reached first from the current position, with the way there."""
        best: tuple[str | None, float, float, list[int]] = (None, INF, INF, [])
        for depot in self.depots:
            length, time, path = self.deadhead_to_node(state, node, depot)
            if (length, time) < (best[1], best[2]):
                best = (depot, length, time, path)
        return best
