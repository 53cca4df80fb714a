"""The street network of a winter-service plan, read from the ROAR-NET salt-spreading JSON.

The format (``name``, ``max_time``, ``nodes``, ``vehicles``, ``depots``, ``A``, ``A_R``,
``E_R``, ``U``) is described in ``problem_statement_README.md`` of the ROAR-NET problem
"Salt Spreading". Its meaning, as this module reads it:

- ``A``: one-way links that may be driven but need no salt (deadhead links);
- ``A_R``: one-way links that must be salted, in their direction;
- ``E_R``: two-way links that must be salted once, in either direction; both directions may
  be driven (an edge of ``E`` is given as two arcs in ``A``);
- ``U``: the nodes where a U-turn is allowed (at every other node it is forbidden);
- ``depots``: refill points with the most salt a visit gives (``refill``);
- ``vehicles``: ``id``, dwelling place ``home`` and salt ``capacity``; a vehicle starts full.

``len`` is a length (metres in Kerteminde), ``time`` the driving time of the link (minutes at
65 km/h in Kerteminde, the same whether salting or not), ``dem`` the salt the link needs, in
the unit of ``capacity``. Rathaus extensions, all optional: ``priority`` on a required link
(1 = first; links of a class are salted before those of the next class on each route) and a
top-level ``"crs": "EPSG:4326"`` saying that node positions are longitude/latitude.

:func:`parse_network` checks everything and raises :class:`NetworkError` with German messages
naming the field, node or link: missing fields, unknown nodes, links that no vehicle can reach
or leave towards a depot under the U-turn rules.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rathaus.core.errors import RathausError

MAX_PROBLEMS_SHOWN = 8
GEOGRAPHIC_CRS = ("EPSG:4326", "WGS84", "urn:ogc:def:crs:OGC:1.3:CRS84")


class NetworkError(RathausError):
    """A network file that cannot be planned on; ``problems`` lists every finding (German)."""

    exit_code = 2
    http_status = 422

    def __init__(self, problems: list[str], label: str = "Die Netzdatei") -> None:
        self.problems = problems
        shown = problems[:MAX_PROBLEMS_SHOWN]
        more = len(problems) - len(shown)
        text = " ".join(shown) + (f" (und {more} weitere Befunde)" if more > 0 else "")
        super().__init__(f"{label} kann nicht verwendet werden: {text}")


@dataclass(frozen=True)
class Link:
    """A street link of the file: ``kind`` is ``A``, ``A_R`` or ``E_R`` (see module doc)."""

    index: int
    kind: str
    tail: str
    head: str
    length: float
    time: float
    demand: float = 0.0
    priority: int | None = None

    @property
    def required(self) -> bool:
        return self.kind != "A"

    @property
    def two_way(self) -> bool:
        return self.kind == "E_R"

    @property
    def name(self) -> str:
        """``12→13`` for a one-way link, ``12–13`` for a two-way one."""
        return f"{self.tail}{'–' if self.two_way else '→'}{self.head}"


@dataclass(frozen=True)
class Arc:
    """One direction in which a link may be driven; ``salts`` when driving it can salt it."""

    index: int
    link: int
    tail: str
    head: str
    length: float
    time: float
    salts: bool


@dataclass(frozen=True)
class Vehicle:
    id: str
    home: str
    capacity: float


@dataclass(frozen=True)
class Depot:
    label: str
    refill: float


@dataclass
class Network:
    """A checked network with its arcs; build it with :func:`parse_network`."""

    name: str
    max_time: float
    nodes: list[str]
    positions: dict[str, tuple[float, float]]
    geographic: bool
    vehicles: list[Vehicle]
    depots: list[Depot]
    links: list[Link]
    uturn_nodes: frozenset[str]
    warnings: list[str] = field(default_factory=list)
    arcs: list[Arc] = field(default_factory=list)
    out_arcs: dict[str, list[int]] = field(default_factory=dict)
    in_arcs: dict[str, list[int]] = field(default_factory=dict)
    arcs_by_pair: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.arcs:
            self._build_arcs()

    def _build_arcs(self) -> None:
        arcs: list[Arc] = []
        for link in self.links:
            ends = [(link.tail, link.head)]
            if link.two_way:
                ends.append((link.head, link.tail))
            for tail, head in ends:
                arcs.append(
                    Arc(len(arcs), link.index, tail, head, link.length, link.time, link.required)
                )
        self.arcs = arcs
        self.out_arcs = {n: [] for n in self.nodes}
        self.in_arcs = {n: [] for n in self.nodes}
        self.arcs_by_pair = {}
        for arc in arcs:
            self.out_arcs[arc.tail].append(arc.index)
            self.in_arcs[arc.head].append(arc.index)
            self.arcs_by_pair.setdefault((arc.tail, arc.head), []).append(arc.index)

    # -- convenience -------------------------------------------------------------------------

    @property
    def required_links(self) -> list[Link]:
        return [link for link in self.links if link.required]

    @property
    def depot_refill(self) -> dict[str, float]:
        return {d.label: d.refill for d in self.depots}

    @property
    def vehicle_by_id(self) -> dict[str, Vehicle]:
        return {v.id: v for v in self.vehicles}

    @property
    def has_positions(self) -> bool:
        return bool(self.positions) and len(self.positions) == len(self.nodes)

    @property
    def has_priorities(self) -> bool:
        return any(link.priority is not None for link in self.links)

    def uturn_allowed(self, node: str) -> bool:
        return node in self.uturn_nodes

    def turn_allowed(self, before: int, after: int) -> bool:
        """May ``after`` follow ``before``? Not when it drives straight back (a U-turn) at a
        node outside ``U``."""
        a, b = self.arcs[before], self.arcs[after]
        return not (b.head == a.tail and a.head not in self.uturn_nodes)

    def summary(self) -> dict[str, Any]:
        required = self.required_links
        return {
            "name": self.name,
            "nodes": len(self.nodes),
            "links": len(self.links),
            "required_links": len(required),
            "deadhead_links": len(self.links) - len(required),
            "required_length": round(sum(x.length for x in required), 3),
            "required_time": round(sum(x.time for x in required), 3),
            "demand": round(sum(x.demand for x in required), 3),
            "capacity": round(sum(v.capacity for v in self.vehicles), 3),
            "vehicles": len(self.vehicles),
            "depots": [d.label for d in self.depots],
            "uturn_nodes": len(self.uturn_nodes),
            "max_time": self.max_time,
            "positions": "geografisch"
            if self.geographic
            else ("aus der Datei" if self.has_positions else "keine"),
            "priorities": self.has_priorities,
        }


# -- parsing ---------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _label(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _fmt(value: float) -> str:
    return f"{value:g}".replace(".", ",")


class _Reader:
    """Collects problems instead of stopping at the first one."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def list_of(self, data: dict[str, Any], key: str, *, required: bool = True) -> list[Any]:
        if key not in data:
            if required:
                self.problem(f"Das Feld „{key}“ fehlt.")
            return []
        value = data[key]
        if not isinstance(value, list):
            self.problem(f"Das Feld „{key}“ muss eine Liste sein.")
            return []
        return value

    def number(
        self, item: dict[str, Any], key: str, where: str, *, positive: bool = False
    ) -> float | None:
        if key not in item:
            self.problem(f"{where}: das Feld „{key}“ fehlt.")
            return None
        value = _number(item[key])
        if value is None:
            self.problem(f"{where}: „{key}“ muss eine Zahl sein (ist {item[key]!r}).")
            return None
        if value < 0 or (positive and value == 0):
            self.problem(
                f"{where}: „{key}“ muss {'größer als 0' if positive else 'mindestens 0'} sein "
                f"(ist {_fmt(value)})."
            )
            return None
        return value


def load_json(data: bytes | str, label: str = "Die Netzdatei") -> dict[str, Any]:
    """The JSON object in ``data``; :class:`NetworkError` (German) when it is none."""
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise NetworkError(["Sie ist keine UTF-8-Textdatei (JSON erwartet)."], label) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NetworkError(
            [f"Sie ist kein gültiges JSON (Zeile {exc.lineno}, Spalte {exc.colno}: {exc.msg})."],
            label,
        ) from None
    if not isinstance(value, dict):
        raise NetworkError(
            [
                "Erwartet wird ein JSON-Objekt mit „nodes“, „vehicles“, „depots“, „A“, „A_R“, "
                "„E_R“ und „U“ (ROAR-NET-Format Salzstreuung)."
            ],
            label,
        )
    return value


def parse_network(data: dict[str, Any] | bytes | str, label: str = "Die Netzdatei") -> Network:
    """Read and check a ROAR-NET salt-spreading network; raise :class:`NetworkError` listing
    every problem found (German, naming field, node or link)."""
    if not isinstance(data, dict):
        data = load_json(data, label)
    r = _Reader()
    name = data.get("name")
    name = name.strip() if isinstance(name, str) and name.strip() else "Streckennetz"
    max_time: float | None = None
    if "max_time" not in data:
        r.problem("Das Feld „max_time“ (längste erlaubte Tourdauer) fehlt.")
    else:
        max_time = _number(data["max_time"])
        if max_time is None or max_time <= 0:
            r.problem(f"„max_time“ muss eine Zahl größer als 0 sein (ist {data['max_time']!r}).")
            max_time = None

    nodes: list[str] = []
    positions: dict[str, tuple[float, float]] = {}
    seen: set[str] = set()
    for i, item in enumerate(r.list_of(data, "nodes"), start=1):
        label_ = _label(item.get("label")) if isinstance(item, dict) else None
        if label_ is None:
            r.problem(f"Knoten {i} in „nodes“ hat kein Feld „label“.")
            continue
        if label_ in seen:
            r.problem(f"Der Knoten „{label_}“ steht zweimal in „nodes“.")
            continue
        seen.add(label_)
        nodes.append(label_)
        pos = item.get("position")
        if isinstance(pos, list | tuple) and len(pos) == 2:
            x, y = _number(pos[0]), _number(pos[1])
            if x is not None and y is not None:
                positions[label_] = (x, y)
    if "nodes" in data and not nodes:
        r.problem("„nodes“ enthält keinen Knoten.")
    known = set(nodes)

    def node_ref(value: Any, where: str) -> str | None:
        ref = _label(value)
        if ref is None:
            r.problem(f"{where}: Knotenangabe fehlt oder ist leer.")
            return None
        if known and ref not in known:
            r.problem(f"{where} verweist auf den unbekannten Knoten „{ref}“.")
            return None
        return ref

    vehicles: list[Vehicle] = []
    for i, item in enumerate(r.list_of(data, "vehicles"), start=1):
        if not isinstance(item, dict):
            r.problem(f"Fahrzeug {i} in „vehicles“ ist kein Objekt.")
            continue
        vid = _label(item.get("id")) or str(i)
        where = f"Fahrzeug „{vid}“"
        home = node_ref(item.get("home"), f"{where} (Feld „home“)")
        capacity = r.number(item, "capacity", where, positive=True)
        if any(v.id == vid for v in vehicles):
            r.problem(f"Die Fahrzeugnummer „{vid}“ kommt zweimal vor.")
        elif home is not None and capacity is not None:
            vehicles.append(Vehicle(vid, home, capacity))
    if "vehicles" in data and not vehicles and not r.problems:
        r.problem("„vehicles“ enthält kein Fahrzeug.")

    depots: list[Depot] = []
    for i, item in enumerate(r.list_of(data, "depots"), start=1):
        if not isinstance(item, dict):
            r.problem(f"Depot {i} in „depots“ ist kein Objekt.")
            continue
        where = f"Depot {i}"
        depot = node_ref(item.get("label"), f"{where} (Feld „label“)")
        refill = r.number(item, "refill", f"Depot „{depot or i}“", positive=True)
        if depot is not None and refill is not None:
            if any(d.label == depot for d in depots):
                r.problem(f"Das Depot „{depot}“ steht zweimal in „depots“.")
            else:
                depots.append(Depot(depot, refill))
    if "depots" in data and not depots and not r.problems:
        r.problem("„depots“ enthält kein Depot (Nachladestelle).")

    links: list[Link] = []
    for kind, end_key in (("A", "arc"), ("A_R", "arc"), ("E_R", "edge")):
        for i, item in enumerate(r.list_of(data, kind, required=kind != "A"), start=1):
            where = f"Strecke {i} in „{kind}“"
            if not isinstance(item, dict):
                r.problem(f"{where} ist kein Objekt.")
                continue
            ends = item.get(end_key)
            if not isinstance(ends, list | tuple) or len(ends) != 2:
                r.problem(f"{where}: das Feld „{end_key}“ mit zwei Knoten fehlt.")
                continue
            tail = node_ref(ends[0], where)
            head = node_ref(ends[1], where)
            length = r.number(item, "len", where)
            time = r.number(item, "time", where)
            demand = r.number(item, "dem", where) if kind != "A" else 0.0
            priority = None
            if "priority" in item and kind != "A":
                p = item["priority"]
                if isinstance(p, bool) or not isinstance(p, int) or p < 1:
                    r.problem(f"{where}: „priority“ muss eine ganze Zahl ab 1 sein (ist {p!r}).")
                else:
                    priority = p
            if None in (tail, head, length, time, demand):
                continue
            if tail == head:
                r.problem(f"{where} ({tail}→{head}) beginnt und endet am selben Knoten.")
                continue
            links.append(
                Link(len(links), kind, tail, head, length, time, demand or 0.0, priority)  # type: ignore[arg-type]
            )
    required = [link for link in links if link.required]
    if not r.problems and not required:
        r.problem("Es gibt keine zu streuende Strecke („A_R“ und „E_R“ sind leer).")

    uturn: set[str] = set()
    for i, item in enumerate(r.list_of(data, "U", required=False), start=1):
        ref = node_ref(item.get("label") if isinstance(item, dict) else item, f"Eintrag {i} in „U“")
        if ref is not None:
            uturn.add(ref)

    if r.problems:
        raise NetworkError(r.problems, label)

    crs = data.get("crs")
    geographic = isinstance(crs, str) and crs.strip() in GEOGRAPHIC_CRS
    if len(positions) != len(nodes):
        positions = {}  # partial positions cannot be drawn: a schematic layout is used instead
        geographic = False
    network = Network(
        name=name,
        max_time=max_time or 0.0,
        nodes=nodes,
        positions=positions,
        geographic=geographic,
        vehicles=vehicles,
        depots=depots,
        links=links,
        uturn_nodes=frozenset(uturn),
    )
    problems = check_network(network)
    if problems:
        raise NetworkError(problems, label)
    return network


# -- checks ----------------------------------------------------------------------------------


def _names(links: Iterable[Link], limit: int = 12) -> str:
    items = [link.name for link in links]
    shown = ", ".join(items[:limit])
    return shown + (f" und {len(items) - limit} weitere" if len(items) > limit else "")


def reachable_arcs(network: Network, start_arcs: Iterable[int]) -> set[int]:
    """Arcs that can be driven after ``start_arcs`` (those included) obeying the U-turn rules."""
    seen = set(start_arcs)
    stack = list(seen)
    while stack:
        a = stack.pop()
        for b in network.out_arcs[network.arcs[a].head]:
            if b not in seen and network.turn_allowed(a, b):
                seen.add(b)
                stack.append(b)
    return seen


def arcs_reaching_depot(network: Network) -> set[int]:
    """Arcs from which some depot can be reached (obeying the U-turn rules), end included."""
    depots = {d.label for d in network.depots}
    good = {a.index for a in network.arcs if a.head in depots}
    # Reverse search over the turn graph: b is good, a may precede b → a is good.
    preds: dict[int, list[int]] = {a.index: [] for a in network.arcs}
    for a in network.arcs:
        for b in network.out_arcs[a.head]:
            if network.turn_allowed(a.index, b):
                preds[b].append(a.index)
    stack = list(good)
    while stack:
        b = stack.pop()
        for a in preds[b]:
            if a not in good:
                good.add(a)
                stack.append(a)
    return good


def check_network(network: Network) -> list[str]:
    """German findings that make planning impossible (empty when the network is usable);
    harmless findings go to ``network.warnings``."""
    problems: list[str] = []
    starts = [a for v in network.vehicles for a in network.out_arcs[v.home]]
    from_home = reachable_arcs(network, starts)
    to_depot = arcs_reaching_depot(network)
    by_link: dict[int, list[Arc]] = {}
    for arc in network.arcs:
        by_link.setdefault(arc.link, []).append(arc)
    unreachable, dead_end = [], []
    for link in network.required_links:
        arcs = by_link[link.index]
        if not any(a.index in from_home for a in arcs):
            unreachable.append(link)
        elif not any(a.index in from_home and a.index in to_depot for a in arcs):
            dead_end.append(link)
    if unreachable:
        problems.append(
            "Diese zu streuenden Strecken sind von den Standorten der Fahrzeuge aus nicht "
            f"erreichbar (Netz nicht zusammenhängend oder Einbahnstraßen/Wendeverbote sperren den Weg): "
            f"{_names(unreachable)}."
        )
    if dead_end:
        problems.append(
            f"Von diesen zu streuenden Strecken führt kein erlaubter Weg zu einem Depot "
            f"(Nachladestelle), etwa weil am Ende einer Sackgasse nicht gewendet werden darf "
            f"(Knoten fehlt in „U“): {_names(dead_end)}."
        )
    if not network.vehicles or not network.depots:
        return problems
    biggest = max(v.capacity for v in network.vehicles)
    too_big = [link for link in network.required_links if link.demand > biggest + 1e-9]
    if too_big:
        problems.append(
            f"Diese Strecken brauchen mehr Salz, als das größte Fahrzeug fasst "
            f"({_fmt(biggest)}): {_names(too_big)}."
        )
    too_long = [link for link in network.required_links if link.time > network.max_time]
    if too_long:
        problems.append(
            f"Diese Strecken dauern allein länger als die erlaubte Tourdauer "
            f"({_fmt(network.max_time)}): {_names(too_long)}."
        )
    used_nodes = {a.tail for a in network.arcs} | {a.head for a in network.arcs}
    isolated = [n for n in network.nodes if n not in used_nodes]
    if isolated:
        network.warnings.append(
            f"{len(isolated)} Knoten ohne Strecke (werden ignoriert): "
            f"{', '.join(isolated[:12])}{' …' if len(isolated) > 12 else ''}."
        )
    unreachable_deadhead = [
        network.links[a.link]
        for a in network.arcs
        if not network.links[a.link].required and a.index not in from_home
    ]
    if unreachable_deadhead:
        network.warnings.append(
            f"Diese Leerfahrt-Strecken sind von keinem Fahrzeugstandort erreichbar (werden nicht "
            f"genutzt): {_names(unreachable_deadhead)}."
        )
    return problems


def network_to_json(network: Network) -> dict[str, Any]:
    """The network in the ROAR-NET format again (as stored with a plan)."""
    data: dict[str, Any] = {
        "name": network.name,
        "max_time": network.max_time,
        "nodes": [
            {
                "label": n,
                "position": list(network.positions[n]) if n in network.positions else [None, None],
            }
            for n in network.nodes
        ],
        "vehicles": [
            {"id": v.id, "home": v.home, "capacity": v.capacity} for v in network.vehicles
        ],
        "depots": [{"label": d.label, "refill": d.refill} for d in network.depots],
        "A": [],
        "A_R": [],
        "E_R": [],
        "U": [{"label": n} for n in network.nodes if n in network.uturn_nodes],
    }
    if network.geographic:
        data["crs"] = "EPSG:4326"
    for link in network.links:
        key = "edge" if link.two_way else "arc"
        item: dict[str, Any] = {key: [link.tail, link.head], "len": link.length, "time": link.time}
        if link.required:
            item["dem"] = link.demand
        if link.priority is not None:
            item["priority"] = link.priority
        data[link.kind].append(item)
    return data
