"""City presets: where a `--city NAME` build gets its buildings and towers (DESIGN §4).

Each preset names the Sionna RT scene that ships for it (used offline, the embedded default), the
bounding box the online path asks OpenStreetMap for, and the tower CSV it brings (if any).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path


@dataclass(frozen=True)
class CityPreset:
    name: str
    description: str
    bundled_scene: str  # attribute of sionna.rt.scene
    bbox: tuple[float, float, float, float]  # W, S, E, N (degrees) for the online path
    towers_csv: str | None = None  # file name in twin/data/, or None (then --towers is required)
    towers_note: str = ""

    def towers_path(self) -> Path | None:
        if self.towers_csv is None:
            return None
        return Path(str(resources.files("twin") / "data" / self.towers_csv))


PRESETS: dict[str, CityPreset] = {}


def register_preset(p: CityPreset) -> CityPreset:
    PRESETS[p.name] = p
    return p


register_preset(
    CityPreset(
        name="paris",
        description="Place Charles-de-Gaulle (Etoile), Paris: about 850 m x 680 m around the Arc de Triomphe",
        bundled_scene="etoile",
        bbox=(2.2920, 48.8710, 2.3023, 48.8762),  # the etoile scene's extent
        towers_csv="paris_towers.csv",
        towers_note="synthetic CellMapper-layout sites shipped with twin (see twin/data/README.md)",
    )
)
register_preset(
    CityPreset(
        name="munich",
        description="Munich old town around the Frauenkirche (Sionna RT 'munich' scene)",
        bundled_scene="munich",
        bbox=(11.5660, 48.1340, 11.5820, 48.1430),
    )
)
register_preset(
    CityPreset(
        name="florence",
        description="Florence around the Duomo (Sionna RT 'florence' scene)",
        bundled_scene="florence",
        bbox=(11.2500, 43.7700, 11.2620, 43.7760),
    )
)
register_preset(
    CityPreset(
        name="san_francisco",
        description="San Francisco downtown blocks (Sionna RT 'san_francisco' scene)",
        bundled_scene="san_francisco",
        bbox=(-122.4100, 37.7850, -122.3980, 37.7930),
    )
)


def get_preset(name: str) -> CityPreset:
    from twin.errors import TwinInputError

    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in PRESETS:
        raise TwinInputError(
            f"unknown city {name!r}",
            field="--city",
            fix=f"use one of: {', '.join(sorted(PRESETS))}; or --place/--bbox/--osm-file for any other area",
        )
    return PRESETS[key]
