"""Winter-service plans in the database: import, plan in the background, read, measure.

:func:`import_plan` checks the network first and writes nothing when it is unusable; the
original file is kept in the original store (SHA-256) once accepted. :func:`start_planning`
queues :func:`run_planning`, which claims the plan (status ``läuft``), solves within the
chosen time limit, writes progress every few seconds and ends ``fertig`` (with the evaluation,
feasible or not) or ``fehlgeschlagen`` with a German reason. :func:`measure` is
``rathaus eval winter``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rathaus.core import audit
from rathaus.core.errors import InvalidTransitionError, NotFoundError, RathausError
from rathaus.core.models import RoutePlan, utcnow
from rathaus.core.storage import OriginalStore
from rathaus.insights.winter.evaluate import Evaluation, Route, Step, evaluate, fmt_num
from rathaus.insights.winter.network import Network, network_to_json, parse_network

if TYPE_CHECKING:
    from rathaus.core.config import Settings
    from rathaus.core.db import Database

log = logging.getLogger(__name__)

NEU, WARTET, LAEUFT, FERTIG, FEHLGESCHLAGEN = "neu", "wartet", "läuft", "fertig", "fehlgeschlagen"
RUNNING = frozenset({WARTET, LAEUFT})
DEFAULT_TIME_LIMIT_S = 60
MAX_TIME_LIMIT_S = 600
PROGRESS_INTERVAL_S = 3.0


def import_plan(
    session: Session,
    *,
    settings: Settings,
    tenant_id: int,
    user_name: str,
    filename: str,
    data: bytes,
    name: str | None = None,
) -> RoutePlan:
    """Check the network file and store it as a new plan (status ``neu``); raises
    :class:`NetworkError` (German, naming fields, nodes and links) and writes nothing then."""
    label = f"„{filename}“" if filename else "Die Netzdatei"
    network = parse_network(data, label)
    stored = OriginalStore(settings.originals_dir).put(tenant_id, data)
    plan = RoutePlan(
        tenant_id=tenant_id,
        name=(name or network.name)[:300],
        filename=filename[:300],
        original_sha256=stored.sha256,
        network=network_to_json(network),
        options={"time_limit_s": DEFAULT_TIME_LIMIT_S, "end_at_depot": True},
        solution={},
        status=NEU,
        message="; ".join(network.warnings),
        created_by=user_name[:120],
    )
    session.add(plan)
    session.flush()
    audit.record(
        session,
        audit.Event(
            kind="route_plan_imported",
            actor=user_name,
            tenant_id=tenant_id,
            subject=f"route_plan:{plan.id}",
            data={"file": filename, "sha256": stored.sha256, **network.summary()},
        ),
    )
    return plan


def get_plan(session: Session, *, tenant_id: int, plan_id: int) -> RoutePlan:
    plan = session.get(RoutePlan, plan_id)
    if plan is None or plan.tenant_id != tenant_id:
        raise NotFoundError(f"Den Winterdienstplan {plan_id} gibt es in Ihrer Kommune nicht.")
    session.refresh(plan)
    return plan


def list_plans(session: Session, *, tenant_id: int, limit: int = 50) -> list[RoutePlan]:
    query = select(RoutePlan).where(RoutePlan.tenant_id == tenant_id)
    return list(session.scalars(query.order_by(RoutePlan.id.desc()).limit(limit)))


def network_of(plan: RoutePlan) -> Network:
    return parse_network(plan.network)


def routes_of(plan: RoutePlan) -> list[Route]:
    return [
        Route(r["vehicle"], [Step(s["arc"][0], s["arc"][1], s["salted"]) for s in r["route"]])
        for r in (plan.solution or {}).get("routes", [])
    ]


def evaluation_of(plan: RoutePlan) -> Evaluation | None:
    data = (plan.solution or {}).get("evaluation")
    return Evaluation.from_dict(data) if data else None


def check_time_limit(value: Any) -> int:
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        raise RathausError(
            f"Das Zeitlimit muss eine ganze Zahl von Sekunden sein (ist {value!r})."
        ) from None
    if not 1 <= seconds <= MAX_TIME_LIMIT_S:
        raise RathausError(
            f"Das Zeitlimit muss zwischen 1 und {MAX_TIME_LIMIT_S} Sekunden liegen (ist {seconds})."
        )
    return seconds


def start_planning(
    session: Session,
    *,
    settings: Settings,
    tenant_id: int,
    plan_id: int,
    user_name: str,
    time_limit_s: int = DEFAULT_TIME_LIMIT_S,
) -> RoutePlan:
    """Queue the planning of ``plan_id`` (commits; with the memory queue it has run already)."""
    seconds = check_time_limit(time_limit_s)
    plan = get_plan(session, tenant_id=tenant_id, plan_id=plan_id)
    if plan.status in RUNNING:
        raise InvalidTransitionError(
            f"Der Plan {plan_id} wird bereits berechnet ({plan.status}). Bitte warten."
        )
    plan.options = {**(plan.options or {}), "time_limit_s": seconds}
    plan.status = WARTET
    plan.message = f"Wartet auf den Start (Zeitlimit {seconds} s) …"
    audit.record(
        session,
        audit.Event(
            kind="route_plan_started",
            actor=user_name,
            tenant_id=tenant_id,
            subject=f"route_plan:{plan_id}",
            data={"time_limit_s": seconds},
        ),
    )
    session.commit()
    from rathaus.insights.winter.jobs import winter_planning_job
    from rathaus.jobs import get_huey

    try:
        get_huey(settings)
        winter_planning_job.enqueue(plan.id)
    except RathausError as exc:
        plan.status = FEHLGESCHLAGEN
        plan.message = f"Die Planung konnte nicht gestartet werden: {exc.message}"
        session.commit()
        raise
    session.refresh(plan)
    return plan


def _set(db: Database, plan_id: int, **values: Any) -> None:
    with db.session() as session:
        session.execute(update(RoutePlan).where(RoutePlan.id == plan_id).values(**values))


def run_planning(db: Database, *, plan_id: int) -> str:
    """Solve plan ``plan_id`` and store routes and evaluation; returns the final status.
    Never raises for a problem of the plan: it ends ``fehlgeschlagen`` with the reason."""
    from rathaus.insights.winter.solve import SolveOptions, solve

    with db.session() as session:
        plan = session.get(RoutePlan, plan_id)
        if plan is None or plan.status not in (WARTET, LAEUFT):
            return plan.status if plan is not None else "fehlt"
        plan.status = LAEUFT
        plan.message = "Die Planung läuft …"
        network_data, options = dict(plan.network), dict(plan.options or {})
    seconds = check_time_limit(options.get("time_limit_s", DEFAULT_TIME_LIMIT_S))
    last = [0.0]

    def progress(info: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_INTERVAL_S:
            return
        last[0] = now
        best = info.get("best_length")
        text = f"Läuft seit {info['elapsed_s']:.0f} von {seconds} s"
        if best is not None and best < 1e9:
            text += f"; beste Tourenlänge bisher {fmt_num(best / 1000, 1)} km"
        _set(db, plan_id, message=text + " …")

    try:
        network = parse_network(network_data)
        result = solve(
            network,
            SolveOptions(time_limit_s=seconds, end_at_depot=options.get("end_at_depot", True)),
            on_progress=progress,
        )
    except Exception as exc:  # noqa: BLE001 - the plan ends with a German message either way
        if isinstance(exc, RathausError):
            message = exc.message
        else:
            log.exception("Winterdienstplan %s fehlgeschlagen", plan_id)
            message = (
                f"Die Planung ist mit einem internen Fehler abgebrochen ({type(exc).__name__}). "
                "Bitte erneut starten und bei Wiederholung die IT informieren."
            )
        _set(db, plan_id, status=FEHLGESCHLAGEN, message=message)
        return FEHLGESCHLAGEN
    ev = result.evaluation
    message = (
        f"Fertig: {fmt_num(ev.total_time, 1)} min Gesamtfahrzeit, "
        f"{fmt_num(ev.total_length / 1000, 1)} km; "
        + (
            "alle Regeln eingehalten."
            if ev.feasible
            else f"{len(ev.violations)} Regelverstöße – bitte prüfen."
        )
    )
    _set(
        db,
        plan_id,
        status=FERTIG,
        solution={
            "routes": [r.to_arcs_json() for r in result.routes],
            "evaluation": ev.to_dict(),
            "stats": result.stats,
        },
        total_time=round(ev.total_time, 6),
        feasible=ev.feasible,
        message=message,
        solved_at=utcnow(),
    )
    return FERTIG


def plan_public(plan: RoutePlan, *, details: bool = False) -> dict[str, Any]:
    """A plan for the JSON API."""
    data: dict[str, Any] = {
        "id": plan.id,
        "name": plan.name,
        "filename": plan.filename,
        "original_sha256": plan.original_sha256,
        "status": plan.status,
        "message": plan.message,
        "total_time": plan.total_time,
        "feasible": plan.feasible,
        "options": plan.options,
        "created_by": plan.created_by,
        "created_at": plan.created_at.isoformat() if plan.created_at else None,
        "solved_at": plan.solved_at.isoformat() if plan.solved_at else None,
        "status_url": f"/api/v1/lagebild/winterdienst/{plan.id}",
    }
    if details:
        data["network"] = network_of(plan).summary()
        ev = evaluation_of(plan)
        data["evaluation"] = ev.to_dict(steps=False) if ev else None
        data["routes"] = (plan.solution or {}).get("routes", [])
        data["stats"] = (plan.solution or {}).get("stats")
    return data


EXPORT_TYPES = {
    "geojson": "application/geo+json",
    "gpx": "application/gpx+xml",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}


def export_bytes(plan: RoutePlan, fmt: str) -> tuple[bytes, str, str]:
    """``(body, media type, file name)`` of a solved plan in ``fmt`` (see :data:`EXPORT_TYPES`)."""
    import json
    import re

    from rathaus.insights.export import to_csv, to_xlsx
    from rathaus.insights.winter import export
    from rathaus.insights.winter.layout import layout

    if fmt not in EXPORT_TYPES:
        raise RathausError(f"Unbekanntes Format „{fmt}“. Erlaubt: {', '.join(EXPORT_TYPES)}.")
    ev = evaluation_of(plan)
    if ev is None:
        raise RathausError(
            f"Der Plan {plan.id} hat noch keine Touren. Bitte zuerst die Planung starten."
        )
    network = network_of(plan)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", f"winterdienst-{plan.id}-{plan.name}").strip("-")
    if fmt == "csv":
        body = to_csv(export.TURN_HEADERS, export.turn_rows(ev))
    elif fmt == "xlsx":
        body = to_xlsx(export.TURN_HEADERS, export.turn_rows(ev), sheet="Abbiegeliste")
    elif fmt == "json":
        body = export.solution_json(routes_of(plan)).encode()
    elif fmt == "geojson":
        data = export.geojson(network, ev, layout(network))
        body = (json.dumps(data, ensure_ascii=False) + "\n").encode()
    else:
        body = export.gpx(network, ev, layout(network)).encode()
    return body, EXPORT_TYPES[fmt], f"{stem}.{fmt}"


# -- the measurement (rathaus eval winter) ----------------------------------------------------------

KERTEMINDE = "kerteminde_kerteminde.json"
PRACTITIONER = "kerteminde_solution_mandrup.txt"


def lower_bound(network: Network, *, end_at_depot: bool = True) -> float | None:
    """A lower bound on the total length: the cheapest deadhead copies that balance every node
    (every vehicle leaves its dwelling place once and arrives at a depot once), CP-SAT.
    Ignores U-turns, salt and time, so every feasible plan is at least this long."""
    from ortools.sat.python import cp_model

    best = None
    depots = [d.label for d in network.depots] if end_at_depot else [None]
    for depot in depots:
        model = cp_model.CpModel()
        balance: dict[str, list[Any]] = {n: [] for n in network.nodes}
        for link in network.required_links:
            if link.two_way:
                x = model.NewBoolVar("")
                balance[link.tail].append(2 * x - 1)
                balance[link.head].append(1 - 2 * x)
            else:
                balance[link.tail].append(1)
                balance[link.head].append(-1)
        extra = []
        for arc in network.arcs:
            y = model.NewIntVar(0, 8, "")
            extra.append((arc, y))
            balance[arc.tail].append(y)
            balance[arc.head].append(-y)
        need = {n: 0 for n in network.nodes}
        for v in network.vehicles:
            need[v.home] += 1
            if depot is not None:
                need[depot] -= 1
        if depot is None:
            sink = {n: model.NewIntVar(0, len(network.vehicles), "") for n in network.nodes}
            model.Add(sum(sink.values()) == len(network.vehicles))
        for n, terms in balance.items():
            model.Add(sum(terms) == need[n] - (sink[n] if depot is None else 0))
        model.Minimize(sum(round(a.length * 10) * y for a, y in extra))
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = 20
        solver.parameters.num_workers = 1
        if solver.Solve(model) != cp_model.OPTIMAL:
            return None
        value = solver.BestObjectiveBound() / 10 + sum(x.length for x in network.required_links)
        best = value if best is None else min(best, value)
    return best


def measure(data_dir: Path, *, time_limit_s: float = 55.0, others: bool = True) -> dict[str, Any]:
    """Solve Kerteminde and compare with the practitioner's route, same cost model."""
    from rathaus.insights.winter.paths import Paths
    from rathaus.insights.winter.routes import parse_route_file
    from rathaus.insights.winter.solve import SolveOptions, solve

    network = parse_network((data_dir / KERTEMINDE).read_bytes(), KERTEMINDE)
    began = time.monotonic()
    result = solve(network, SolveOptions(time_limit_s=time_limit_s))
    wall = time.monotonic() - began
    ev = result.evaluation
    routes, notes = parse_route_file(network, (data_dir / PRACTITIONER).read_bytes())
    prac = evaluate(network, routes)
    # the practitioner's routes end after the last salted link; the same routes driven on to
    # the nearest depot, as the problem statement requires:
    paths = Paths(network)
    completed = []
    for route in routes:
        last = route.steps[-1]
        arc = network.arcs_by_pair[(last.tail, last.head)][0]
        _d, _l, _t, way = paths.nearest_depot(arc, last.head)
        steps = route.steps + [Step(network.arcs[a].tail, network.arcs[a].head) for a in way]
        completed.append(Route(route.vehicle, steps))
    prac_depot = evaluate(network, completed)
    bound = lower_bound(network)
    speed = ev.total_length / ev.total_time if ev.total_time else None
    out: dict[str, Any] = {
        "instance": network.name,
        "time_limit_s": time_limit_s,
        "wall_s": round(wall, 1),
        "total_time": round(ev.total_time, 3),
        "total_length": round(ev.total_length, 1),
        "feasible": ev.feasible,
        "violations": [v.message for v in ev.violations],
        "vehicles": [
            {
                "vehicle": v.vehicle,
                "time": round(v.time, 3),
                "length": v.length,
                "salt": v.salt,
                "refills": v.refills,
                "ends_at": v.ends_at,
            }
            for v in ev.vehicles
        ],
        "practitioner_time": round(prac.total_time, 3),
        "practitioner_length": prac.total_length,
        "practitioner_feasible": prac.feasible,
        "practitioner_violations": len(prac.violations),
        "practitioner_violation_kinds": sorted({v.kind for v in prac.violations}),
        "practitioner_notes": notes,
        "ratio": round(ev.total_time / prac.total_time, 4),
        "practitioner_time_to_depot": round(prac_depot.total_time, 3),
        "ratio_to_depot": round(ev.total_time / prac_depot.total_time, 4),
        "lower_bound_length": bound,
        "lower_bound_time": round(bound / speed, 3) if bound and speed else None,
        "target_ratio": 0.9,
        "solver": result.stats,
    }
    if others:
        out["others"] = {}
        for name in ("gualandi_gualandi.json", "belben_belben.json"):
            path = data_dir / name
            if not path.exists():
                continue
            net = parse_network(path.read_bytes(), name)
            r = solve(net, SolveOptions(time_limit_s=3))
            out["others"][net.name] = {
                "total_length": r.evaluation.total_length,
                "total_time": r.evaluation.total_time,
                "feasible": r.evaluation.feasible,
                "lower_bound_length": lower_bound(net),
            }
    return out
