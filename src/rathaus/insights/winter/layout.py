"""Where to draw the nodes: the positions of the file, or a schematic layout.

Kerteminde's file has no coordinates (``position: [null, null]``; the spreadsheet has none
either). Then the nodes are placed by classical multidimensional scaling (Torgerson) of the
shortest-path distances along the streets: near on the road is near on the drawing. Such a
drawing is labelled "schematische Darstellung" – it is not a map and not to scale.
"""

from __future__ import annotations

from dataclasses import dataclass

from rathaus.insights.winter.network import Network


@dataclass(frozen=True)
class Layout:
    positions: dict[str, tuple[float, float]]
    schematic: bool
    geographic: bool

    @property
    def label(self) -> str:
        if self.geographic:
            return "Karte (geografische Koordinaten der Datei)"
        if self.schematic:
            return (
                "schematische Darstellung: Lage der Knoten aus den Streckenlängen berechnet, "
                "nicht maßstäblich"
            )
        return "Lageplan nach den Koordinaten der Datei (nicht geografisch)"


def layout(network: Network) -> Layout:
    if network.has_positions:
        return Layout(dict(network.positions), schematic=False, geographic=network.geographic)
    return Layout(mds_positions(network), schematic=True, geographic=False)


def mds_positions(network: Network) -> dict[str, tuple[float, float]]:
    """Classical MDS of the undirected shortest-path lengths (Floyd–Warshall with numpy)."""
    import numpy as np

    nodes = network.nodes
    index = {n: i for i, n in enumerate(nodes)}
    size = len(nodes)
    if size == 1:
        return {nodes[0]: (0.0, 0.0)}
    dist = np.full((size, size), np.inf)
    np.fill_diagonal(dist, 0.0)
    for link in network.links:
        i, j = index[link.tail], index[link.head]
        d = max(link.length, 1e-6)
        dist[i, j] = min(dist[i, j], d)
        dist[j, i] = min(dist[j, i], d)
    for k in range(size):
        dist = np.minimum(dist, dist[:, k : k + 1] + dist[k : k + 1, :])
    finite = dist[np.isfinite(dist)]
    far = (finite.max() if finite.size else 1.0) * 1.5 or 1.0
    dist[~np.isfinite(dist)] = far  # parts without a connection are set apart
    squared = dist**2
    centering = np.eye(size) - np.ones((size, size)) / size
    gram = -0.5 * centering @ squared @ centering
    values, vectors = np.linalg.eigh(gram)
    order = np.argsort(values)[::-1][:2]
    coords = vectors[:, order] * np.sqrt(np.maximum(values[order], 0.0))
    if coords.shape[1] < 2:
        coords = np.column_stack([coords, np.zeros(size)])
    # a fixed orientation, so the same network is always drawn the same way
    for axis in range(2):
        column = coords[:, axis]
        if column[np.argmax(np.abs(column))] < 0:
            coords[:, axis] = -column
    return {n: (float(coords[i, 0]), float(coords[i, 1])) for n, i in index.items()}
