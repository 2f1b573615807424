"""Top-view preview images (docs/architecture.md "Contracts" ``previews/*.png``), matplotlib with the Agg backend.

Coordinates are the local frame (metres, x east, y north). Tower sector azimuths are degrees clockwise from
north, so a sector line points along (sin az, cos az).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import shapely

from twin.errors import TwinInputError

SECTOR_LINE_M = 40.0  # length of the azimuth tick drawn from a tower, metres


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _building_patches(buildings):
    """(list of matplotlib Paths, heights) for every polygon part, holes included."""
    from matplotlib.path import Path as MPath

    paths, heights = [], []
    gdf = buildings.gdf
    for geom, h in zip(gdf["geometry_local"].values, gdf["height_m"].to_numpy(), strict=True):
        for poly in shapely.get_parts(geom):
            rings = [np.asarray(poly.exterior.coords)[:, :2]] + [
                np.asarray(r.coords)[:, :2] for r in poly.interiors
            ]
            verts = np.concatenate(rings)
            codes = np.concatenate(
                [[MPath.MOVETO] + [MPath.LINETO] * (len(r) - 2) + [MPath.CLOSEPOLY] for r in rings]
            )
            paths.append(MPath(verts, codes))
            heights.append(float(h))
    return paths, np.asarray(heights)


def _check_columns(df, cols, name: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise TwinInputError(
            f"{name} lacks column(s) {', '.join(missing)}", field=missing[0], fix=f"{name} needs {cols}"
        )


def _draw_buildings(ax, buildings, *, cmap="viridis", with_colorbar=True, fig=None):
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import PathPatch

    paths, heights = _building_patches(buildings)
    if not paths:
        return None
    coll = PatchCollection([PathPatch(p) for p in paths], cmap=cmap, edgecolor="k", linewidths=0.2)
    coll.set_array(heights)
    ax.add_collection(coll)
    if with_colorbar and fig is not None:
        fig.colorbar(coll, ax=ax, label="building height (m)", shrink=0.8)
    return coll


def plot_top(
    buildings, towers_df=None, receivers_df=None, out_png: str | Path = "top.png", *, title: str = ""
) -> Path:
    """Footprints coloured by height (colourbar, metres), towers with a short line per sector azimuth, receivers.

    ``towers_df`` needs columns x, y, azimuth_deg, site_id; ``receivers_df`` x, y (local metres).
    """
    plt = _pyplot()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 7), dpi=120)
    try:
        _draw_buildings(ax, buildings, fig=fig)
        xs, ys = [], []
        b = buildings.bounds_local() if len(buildings.gdf) else None
        if b:
            xs += [b[0], b[2]]
            ys += [b[1], b[3]]
        if receivers_df is not None and len(receivers_df):
            _check_columns(receivers_df, ["x", "y"], "receivers")
            ax.scatter(receivers_df["x"], receivers_df["y"], s=3, c="tab:blue", label="receivers", zorder=3)
            xs += [receivers_df["x"].min(), receivers_df["x"].max()]
            ys += [receivers_df["y"].min(), receivers_df["y"].max()]
        if towers_df is not None and len(towers_df):
            _check_columns(towers_df, ["x", "y", "azimuth_deg", "site_id"], "towers")
            sites = towers_df.groupby("site_id", sort=True)[["x", "y"]].first()
            ax.scatter(
                sites["x"],
                sites["y"],
                marker="^",
                s=60,
                c="tab:red",
                edgecolors="k",
                label="towers",
                zorder=4,
            )
            for x, y, az in towers_df[["x", "y", "azimuth_deg"]].itertuples(index=False):
                if az is None or not np.isfinite(az):
                    continue
                a = np.deg2rad(float(az))  # clockwise from north
                ax.plot(
                    [x, x + SECTOR_LINE_M * np.sin(a)],
                    [y, y + SECTOR_LINE_M * np.cos(a)],
                    c="tab:red",
                    lw=1.2,
                    zorder=4,
                )
            xs += [towers_df["x"].min(), towers_df["x"].max()]
            ys += [towers_df["y"].min(), towers_df["y"].max()]
        if xs:
            pad = 0.03 * max(max(xs) - min(xs), max(ys) - min(ys), 1.0)
            ax.set_xlim(min(xs) - pad, max(xs) + pad)
            ax.set_ylim(min(ys) - pad, max(ys) + pad)
        ax.set_aspect("equal")
        ax.set_xlabel("x east (m)")
        ax.set_ylabel("y north (m)")
        if title:
            ax.set_title(title)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize=8)
        fig.savefig(out_png, bbox_inches="tight")
    finally:
        plt.close(fig)
    return out_png


def plot_path_gain(points_xy, gain_db, buildings, out_png: str | Path, *, title: str = "path gain") -> Path:
    """Scatter of path gain (dB) at points (N, 2) local metres over grey footprints, with a colourbar in dB."""
    plt = _pyplot()
    pts = np.asarray(points_xy, dtype=float)
    g = np.asarray(gain_db, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) != len(g):
        raise TwinInputError(
            f"points_xy {pts.shape} and gain_db {g.shape} do not match",
            field="points_xy",
            fix="(N, 2) and (N,)",
        )
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 7), dpi=120)
    try:
        from matplotlib.collections import PatchCollection
        from matplotlib.patches import PathPatch

        paths, _ = _building_patches(buildings)
        if paths:
            ax.add_collection(
                PatchCollection(
                    [PathPatch(p) for p in paths], facecolor="0.75", edgecolor="0.4", linewidths=0.2
                )
            )
        ok = np.isfinite(g)
        if (~ok).any():  # points without any path: grey crosses
            ax.scatter(pts[~ok, 0], pts[~ok, 1], marker="x", s=10, c="0.45", linewidths=0.6, zorder=2, label="no path")
            ax.legend(loc="upper right", fontsize=7)
        sc = ax.scatter(pts[ok, 0], pts[ok, 1], c=g[ok], s=8, cmap="inferno", zorder=3)
        fig.colorbar(sc, ax=ax, label="path gain (dB)", shrink=0.8)
        ax.set_aspect("equal")
        ax.autoscale_view()
        ax.set_xlabel("x east (m)")
        ax.set_ylabel("y north (m)")
        ax.set_title(title)
        fig.savefig(out_png, bbox_inches="tight")
    finally:
        plt.close(fig)
    return out_png


__all__ = ["plot_path_gain", "plot_top"]
