"""The playground as it really is: read from its namespaces, drawn as text or as a PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wirelab.errors import WirelabError
from wirelab.playground.netns import Playground, run
from wirelab.playground.topology import BRIDGES, HOSTS, LINKS

__all__ = ["draw_png", "live_state", "text_diagram"]

#: Where each node sits in the picture (column, row): homes left, server room right.
_LAYOUT = {
    "h1": (0, 0), "h2": (0, 1), "h3": (0, 2), "homeA": (1, 1), "modemA": (2, 1),
    "h4": (0, 4), "homeB": (1, 4), "modemB": (2, 4), "isp": (3, 2.5),
    "backbone": (4, 2.5), "example": (5, 2.5), "exampleCOM": (6, 2.5),
    "ftp": (7, 1.5), "mail": (7, 2.5), "www": (7, 3.5),
}  # fmt: skip


def live_state(pg: Playground) -> dict[str, Any]:
    """Every namespace's interfaces, addresses and routes, and the links that exist."""
    nodes: dict[str, Any] = {}
    for name in [h.name for h in HOSTS] + list(BRIDGES):
        try:
            links = json.loads(run(pg.cmd(["ip", "-n", pg.ns(name), "-j", "addr", "show"])))
            routes = json.loads(run(pg.cmd(["ip", "-n", pg.ns(name), "-j", "-4", "route", "show"])))
        except (WirelabError, ValueError):
            continue
        nodes[name] = {
            "interfaces": {
                ln["ifname"]: {
                    "addresses": [
                        f"{a['local']}/{a['prefixlen']}"
                        for a in ln.get("addr_info", [])
                        if a.get("family") == "inet"
                    ],
                    "mtu": ln.get("mtu"),
                    "up": "UP" in ln.get("flags", []),
                }
                for ln in links
                if ln["ifname"] != "lo"
            },
            "routes": [
                " ".join(
                    [r["dst"]]
                    + (["via", r["gateway"]] if "gateway" in r else [])
                    + ["dev", r.get("dev", "?")]
                )
                for r in routes
            ],
        }
    edges = [
        [link.a.node, link.a.device, link.b.node, link.b.device]
        for link in LINKS
        if link.a.device in nodes.get(link.a.node, {}).get("interfaces", {})
        and link.b.device in nodes.get(link.b.node, {}).get("interfaces", {})
    ]
    return {"prefix": pg.prefix, "nodes": nodes, "links": edges}


def _label(name: str, node: dict[str, Any]) -> str:
    addresses = sorted(
        {a.split("/")[0] for i in node["interfaces"].values() for a in i["addresses"]}
    )
    return f"{name} {', '.join(addresses)}".strip()


def text_diagram(state: dict[str, Any]) -> str:
    """One line per link, ``h1 eth1 192.168.1.11 --- homeA``, from the live state."""
    nodes = state["nodes"]
    lines = []
    for a, a_dev, b, b_dev in state["links"]:
        left = _label(a, nodes[a]) if a not in BRIDGES else f"[{a}]"
        right = _label(b, nodes[b]) if b not in BRIDGES else f"[{b}]"
        lines.append(f"{left} ({a_dev}) --- ({b_dev}) {right}")
    return "\n".join(lines)


def draw_png(state: dict[str, Any], path: Path) -> Path:
    """Draw the live playground (hosts, LANs, links, addresses) as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nodes = state["nodes"]
    fig, ax = plt.subplots(figsize=(13, 6))
    try:
        for a, _, b, _ in state["links"]:
            (xa, ya), (xb, yb) = _LAYOUT[a], _LAYOUT[b]
            ax.plot([xa, xb], [-ya, -yb], color="0.55", zorder=1)
        for name, node in nodes.items():
            x, y = _LAYOUT[name]
            bridge = name in BRIDGES
            text = f"[{name}]" if bridge else _label(name, node).replace(" ", "\n", 1)
            ax.text(
                x,
                -y,
                text,
                ha="center",
                va="center",
                fontsize=8,
                zorder=2,
                bbox={
                    "boxstyle": "round",
                    "facecolor": "#e8eef8" if bridge else "#fff7e0",
                    "edgecolor": "0.4",
                },
            )
        ax.set_xlim(-0.7, 7.7)
        ax.set_ylim(-4.7, 0.7)
        ax.axis("off")
        ax.set_title(f"wirelab playground {state['prefix']} (read from its namespaces)")
        fig.savefig(path, dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path
