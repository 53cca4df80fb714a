"""The cost model of the ROAR-NET problem statement "Salt Spreading", and its check.

A solution gives each vehicle a route: the links it drives, in order, each marked salted or
not. :func:`evaluate` follows every route from the vehicle's dwelling place and checks every
rule of the problem statement; it reports German violations, never silently repairs:

- a route starts at the vehicle's dwelling place (``home``) and is continuous; every step uses
  a link of the network in a direction in which it may be driven;
- a step is salted only on a required link in a direction in which it may be salted
  (``A_R`` in its direction, ``E_R`` in either); every required link is salted exactly once;
- the vehicle starts full; salting a link uses its ``dem``; whenever the vehicle reaches a
  depot its load becomes ``min(capacity, load + refill)``; the load never falls below 0;
- no U-turn (``u→v→u``) at a node outside ``U``;
- each route ends at a depot (each trip ends at a depot; the way home from the last depot is
  off duty and not counted), unless ``end_at_depot=False`` (the practical variant in which the
  last trip ends after the last salted link);
- the duration of a route, the sum of the ``time`` of every link driven (salted or not: the
  format gives one time per link), is at most ``max_time``;
- with priority classes (Rathaus extension): on each route a link is salted only after all
  links of a more urgent class on that route.

The objective of the problem statement is the total length; Rathaus reports it next to the
total time (for Kerteminde both are the same up to the speed of 65 km/h).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rathaus.insights.winter.network import Network

EPS = 1e-6


@dataclass(frozen=True)
class Step:
    """One link driven, from ``tail`` to ``head``; ``salted`` when salt is spread on it."""

    tail: str
    head: str
    salted: bool = False


@dataclass
class Route:
    vehicle: str
    steps: list[Step]

    def to_arcs_json(self) -> dict[str, Any]:
        """The ROAR-NET solution format with arcs."""
        return {
            "vehicle": self.vehicle,
            "route": [{"arc": [s.tail, s.head], "salted": s.salted} for s in self.steps],
        }


@dataclass
class StepResult:
    tail: str
    head: str
    salted: bool
    link: int | None
    length: float
    time: float
    clock: float  # route time after this step
    load: float  # salt on board after this step (and after a refill at its head)
    refill: float = 0.0  # salt taken on at the head (a depot)


@dataclass
class VehicleResult:
    vehicle: str
    home: str
    capacity: float
    time: float = 0.0
    length: float = 0.0
    service_time: float = 0.0
    service_length: float = 0.0
    salt: float = 0.0
    refills: int = 0
    trips: int = 0
    ends_at: str = ""
    steps: list[StepResult] = field(default_factory=list)

    @property
    def deadhead_time(self) -> float:
        return self.time - self.service_time

    @property
    def deadhead_length(self) -> float:
        return self.length - self.service_length


@dataclass
class Violation:
    kind: str
    message: str
    vehicle: str | None = None


@dataclass
class Evaluation:
    feasible: bool
    total_time: float
    total_length: float
    vehicles: list[VehicleResult]
    violations: list[Violation]
    required_links: int
    salted_links: int
    max_time: float
    end_at_depot: bool = True

    def to_dict(self, *, steps: bool = True) -> dict[str, Any]:
        data = asdict(self)
        for v, vr in zip(data["vehicles"], self.vehicles, strict=True):
            v["deadhead_time"] = round(vr.deadhead_time, 6)
            v["deadhead_length"] = round(vr.deadhead_length, 6)
            if not steps:
                v.pop("steps")
        data["total_time"] = round(self.total_time, 6)
        data["total_length"] = round(self.total_length, 6)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        vehicles = []
        for v in data["vehicles"]:
            v = {k: val for k, val in v.items() if k not in ("deadhead_time", "deadhead_length")}
            v["steps"] = [StepResult(**s) for s in v.get("steps", [])]
            vehicles.append(VehicleResult(**v))
        return cls(
            feasible=data["feasible"],
            total_time=data["total_time"],
            total_length=data["total_length"],
            vehicles=vehicles,
            violations=[Violation(**x) for x in data["violations"]],
            required_links=data["required_links"],
            salted_links=data["salted_links"],
            max_time=data["max_time"],
            end_at_depot=data.get("end_at_depot", True),
        )


def fmt_num(value: float, digits: int = 1) -> str:
    """German number: ``1.234,5``."""
    text = f"{value:,.{digits}f}"
    return text.replace(",", "_").replace(".", ",").replace("_", ".")


def _pick_arc(network: Network, step: Step, salted_before: set[int]) -> int | None:
    """The arc a step drives: for a salted step a salt-able arc (one whose link is still
    unsalted first), otherwise the shortest arc between the two nodes."""
    candidates = network.arcs_by_pair.get((step.tail, step.head), [])
    if not candidates:
        return None
    arcs = network.arcs
    if step.salted:
        salting = [a for a in candidates if arcs[a].salts]
        if salting:
            fresh = [a for a in salting if arcs[a].link not in salted_before]
            return min(fresh or salting, key=lambda a: (arcs[a].length, arcs[a].time))
    return min(candidates, key=lambda a: (arcs[a].length, arcs[a].time))


def evaluate(network: Network, routes: list[Route], *, end_at_depot: bool = True) -> Evaluation:
    """Follow every route and check every rule of the problem statement (see module doc)."""
    violations: list[Violation] = []
    refill_at = network.depot_refill
    vehicles = network.vehicle_by_id
    salted_count: dict[int, int] = {}
    results: list[VehicleResult] = []
    seen_vehicles: set[str] = set()

    def violate(kind: str, message: str, vehicle: str | None = None) -> None:
        violations.append(Violation(kind, message, vehicle))

    for route in routes:
        vehicle = vehicles.get(route.vehicle)
        if vehicle is None:
            violate("fahrzeug", f"Das Fahrzeug „{route.vehicle}“ gibt es im Netz nicht.")
            continue
        if route.vehicle in seen_vehicles:
            violate("fahrzeug", f"Fahrzeug {route.vehicle} hat mehr als eine Route.", route.vehicle)
            continue
        seen_vehicles.add(route.vehicle)
        who = f"Fahrzeug {vehicle.id}"
        vr = VehicleResult(vehicle.id, vehicle.home, vehicle.capacity)
        results.append(vr)
        if not route.steps:
            continue
        load, clock = vehicle.capacity, 0.0
        short_of_salt = False
        at = vehicle.home
        previous: tuple[str, str] | None = None
        priority_seen = 0
        trips = 1
        for number, step in enumerate(route.steps, start=1):
            if step.tail != at:
                violate(
                    "zusammenhang",
                    f"{who}: Schritt {number} beginnt an Knoten {step.tail}, das Fahrzeug steht "
                    f"aber an Knoten {at} (Route nicht zusammenhängend).",
                    vehicle.id,
                )
            arc_index = _pick_arc(network, step, set(salted_count))
            link_index = None
            length = time = 0.0
            if arc_index is None:
                violate(
                    "strecke",
                    f"{who}: Schritt {number} ({step.tail}→{step.head}) – diese Verbindung gibt "
                    "es im Netz nicht (oder nur in der Gegenrichtung).",
                    vehicle.id,
                )
            else:
                arc = network.arcs[arc_index]
                link_index, length, time = arc.link, arc.length, arc.time
                link = network.links[arc.link]
                if step.salted and not arc.salts:
                    violate(
                        "streuen",
                        f"{who}: Schritt {number} ({step.tail}→{step.head}) ist als gestreut "
                        "markiert, ist aber keine zu streuende Strecke in dieser Richtung.",
                        vehicle.id,
                    )
                elif step.salted:
                    salted_count[link.index] = salted_count.get(link.index, 0) + 1
                    load -= link.demand
                    vr.salt += link.demand
                    vr.service_time += time
                    vr.service_length += length
                    if load < -EPS and not short_of_salt:
                        short_of_salt = True
                        violate(
                            "salz",
                            f"{who}: Auf Strecke {link.name} (Schritt {number}) reicht das Salz "
                            f"nicht: es fehlen {fmt_num(-load)} (Kapazität "
                            f"{fmt_num(vehicle.capacity)}).",
                            vehicle.id,
                        )
                    if link.priority is not None:
                        if link.priority < priority_seen:
                            violate(
                                "prioritaet",
                                f"{who}: Strecke {link.name} (Priorität {link.priority}) wird "
                                f"erst nach einer Strecke der Priorität {priority_seen} gestreut.",
                                vehicle.id,
                            )
                        priority_seen = max(priority_seen, link.priority)
            if (
                previous is not None
                and previous == (step.head, step.tail)
                and step.tail not in network.uturn_nodes
            ):
                violate(
                    "wenden",
                    f"{who}: Wendemanöver an Knoten {step.tail} (Schritt {number}); dort ist "
                    "Wenden nicht erlaubt.",
                    vehicle.id,
                )
            clock += time
            vr.length += length
            refill = 0.0
            if step.head in refill_at:
                new_load = min(vehicle.capacity, max(load, 0.0) + refill_at[step.head])
                refill = new_load - max(load, 0.0)
                if refill > EPS:
                    vr.refills += 1
                    short_of_salt = False
                if number < len(route.steps):
                    trips += 1
                load = new_load
            vr.steps.append(
                StepResult(
                    step.tail, step.head, step.salted, link_index, length, time, clock, load, refill
                )
            )
            previous = (step.tail, step.head)
            at = step.head
        vr.time = clock
        vr.trips = trips
        vr.ends_at = at
        if end_at_depot and at not in refill_at:
            violate(
                "ende",
                f"{who}: Die Route endet an Knoten {at}, nicht an einem Depot "
                f"({', '.join(refill_at)}).",
                vehicle.id,
            )
        if clock > network.max_time + EPS:
            violate(
                "zeit",
                f"{who}: Die Tour dauert {fmt_num(clock, 2)}, erlaubt sind "
                f"{fmt_num(network.max_time, 2)}.",
                vehicle.id,
            )

    required = network.required_links
    missing = [link for link in required if link.index not in salted_count]
    if missing:
        names = ", ".join(link.name for link in missing[:15])
        more = f" und {len(missing) - 15} weitere" if len(missing) > 15 else ""
        violate(
            "fehlt",
            f"{len(missing)} zu streuende Strecken werden nicht gestreut: {names}{more}.",
        )
    twice = [network.links[i] for i, n in sorted(salted_count.items()) if n > 1]
    if twice:
        violate(
            "doppelt",
            "Mehrfach gestreut: " + ", ".join(link.name for link in twice[:15]) + ".",
        )
    return Evaluation(
        feasible=not violations,
        total_time=sum(v.time for v in results),
        total_length=sum(v.length for v in results),
        vehicles=results,
        violations=violations,
        required_links=len(required),
        salted_links=len(salted_count),
        max_time=network.max_time,
        end_at_depot=end_at_depot,
    )
