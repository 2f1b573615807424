"""City presets: where a ``--city NAME`` build gets its buildings, towers and georeference (one table).

Each preset names the Sionna RT scene that ships for it (used offline, the embedded default), the landmark that
anchors that scene to WGS84 (the scenes carry no georeference: the centre of the landmark's meshes is put at
``anchor_lat``/``anchor_lon``, x east and y north), the bounding box the online path asks OpenStreetMap for, and
the tower CSV it brings (if any). Paris/etoile: Arc de Triomphe -> 48.87378 N, 2.29503 E; the Munich, Florence
and San Francisco anchors are approximate (landmark centre coordinates to ~10-20 m).

A preset joins :data:`CITIES` by ``CITIES.add(name, CityPreset(...))``; :func:`get_city` looks one up by any
spelling :func:`city_key` maps to its name (``"San Francisco"``, ``"sf"``, ``"etoile"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from twin.registry import Registry


@dataclass(frozen=True)
class CityPreset:
    name: str
    description: str
    scene: str  # attribute of sionna.rt.scene / directory under sionna/rt/scenes
    landmark: str  # object of the scene whose mesh centre is the anchor
    anchor_lat: float  # degrees
    anchor_lon: float  # degrees
    anchor_approximate: bool
    anchor_note: str
    bbox: tuple[float, float, float, float]  # W, S, E, N (degrees) for the online path
    towers_csv: str | None = None  # file name in twin/data/, or None (then --towers is required)
    towers_note: str = ""

    def towers_path(self) -> Path | None:
        if self.towers_csv is None:
            return None
        return Path(str(resources.files("twin") / "data" / self.towers_csv))


#: other spellings -> preset name (scene names, abbreviations)
ALIASES = {"etoile": "paris", "sf": "san_francisco"}


def city_key(name: str) -> str:
    """The one name normaliser of city presets: lower case, ``-``/space -> ``_``, aliases resolved."""
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    return ALIASES.get(key, key)


CITIES: Registry[CityPreset] = Registry(
    "city", field="--city", normalize=city_key, hint="or --place/--bbox/--osm-file for any other area"
)

for _p in (
    CityPreset(
        name="paris",
        description="Place Charles-de-Gaulle (Etoile), Paris: about 850 m x 680 m around the Arc de Triomphe",
        scene="etoile",
        landmark="Arc_de_Triomphe",
        anchor_lat=48.87378,
        anchor_lon=2.29503,
        anchor_approximate=False,
        anchor_note="Arc de Triomphe, Place Charles-de-Gaulle, Paris",
        bbox=(2.2920, 48.8710, 2.3023, 48.8762),  # the etoile scene's extent
        towers_csv="paris_towers.csv",
        towers_note="synthetic CellMapper-layout sites shipped with twin (see twin/data/README.md)",
    ),
    CityPreset(
        name="munich",
        description="Munich old town around the Frauenkirche (Sionna RT 'munich' scene)",
        scene="munich",
        landmark="Frauenkirche",
        anchor_lat=48.1386,
        anchor_lon=11.5737,
        anchor_approximate=True,
        anchor_note="Frauenkirche, Munich (approximate, ~20 m)",
        bbox=(11.5660, 48.1340, 11.5820, 48.1430),
    ),
    CityPreset(
        name="florence",
        description="Florence around the Duomo (Sionna RT 'florence' scene)",
        scene="florence",
        landmark="Cattedrale_di_Santa_Maria_del_Fiore",
        anchor_lat=43.7731,
        anchor_lon=11.2560,
        anchor_approximate=True,
        anchor_note="Cathedral of Santa Maria del Fiore (Duomo), Florence (approximate, ~20 m)",
        bbox=(11.2500, 43.7700, 11.2620, 43.7760),
    ),
    CityPreset(
        name="san_francisco",
        description="San Francisco downtown blocks (Sionna RT 'san_francisco' scene)",
        scene="san_francisco",
        landmark="Coit_Tower",
        anchor_lat=37.80240,
        anchor_lon=-122.40582,
        anchor_approximate=True,
        anchor_note="Coit Tower, Telegraph Hill, San Francisco (approximate, ~10 m; the scene has terrain)",
        bbox=(-122.4100, 37.7850, -122.3980, 37.7930),
    ),
):
    CITIES.add(_p.name, _p)


def get_city(name: str) -> CityPreset:
    """The preset called ``name`` (any spelling :func:`city_key` accepts); ``UnknownNameError`` listing the others."""
    return CITIES.get(name)


__all__ = ["ALIASES", "CITIES", "CityPreset", "city_key", "get_city"]
