"""Winterdienst-Tourenplanung des Bauhofs: salt-spreading arc routing.

One room per step, read top to bottom:

- :mod:`.network`  — the street network (ROAR-NET salt-spreading JSON), checked, German messages
- :mod:`.paths`    — shortest deadhead paths that respect the U-turn rules
- :mod:`.evaluate` — the cost model of the problem statement: times, salt, refills, U-turns, limit
- :mod:`.routes`   — reading route files (node sequences, ROAR-NET arc lists, the practitioner's)
- :mod:`.solve`    — the planner: OR-Tools routing on the required links as tasks
- :mod:`.layout`   — node positions, or a schematic layout (classical MDS) when there are none
- :mod:`.export`   — turn list, SVG map, GeoJSON, GPX
- :mod:`.service`  — plans in the database, the background job, the measurement (``eval``)

Nothing here imports the web or CLI layers; OR-Tools is imported only inside the solver.
"""
