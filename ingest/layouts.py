"""Tower CSV layouts: which header names a CellMapper or OpenCelliD export uses for each canonical field.

A layout joins :data:`LAYOUTS` with :func:`register_layout`; the tower reader (:mod:`twin.ingest.towers`)
detects a file's layout by its header (a headerless OpenCelliD dump by its first field).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from twin.registry import Registry


@dataclass(frozen=True)
class Layout:
    """A tower CSV layout: canonical field -> accepted header names (lower case), required and optional."""

    name: str
    columns: str  # the header as the layout defines it (for messages)
    required: Mapping[str, tuple[str, ...]]
    optional: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    headerless: tuple[str, ...] = ()  # column names of a headerless file in this layout


LAYOUTS: Registry[Layout] = Registry("tower layout", field="layout")


def register_layout(layout: Layout) -> Layout:
    """Add ``layout`` under its name; a name taken twice raises ``ValueError``."""
    return LAYOUTS.add(layout.name, layout)


register_layout(
    Layout(
        name="cellmapper",
        columns="latitude,longitude,altitude,MCC,MNC,LAC|TAC,CID,signal,type,subtype,ARFCN,PSC|PCI",
        required={
            "lat": ("latitude",),
            "lon": ("longitude",),
            "mcc": ("mcc",),
            "mnc": ("mnc",),
            "tac": ("lac", "tac"),
            "cid": ("cid",),
            "arfcn": ("arfcn", "earfcn"),
            "pci": ("psc", "pci"),
        },
        optional={"radio": ("type",)},
    )
)
register_layout(
    Layout(
        name="opencellid",
        columns="radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal",
        required={
            "radio": ("radio",),
            "mcc": ("mcc",),
            "mnc": ("net", "mnc"),
            "tac": ("area",),
            "cid": ("cell",),
            "lon": ("lon",),
            "lat": ("lat",),
        },
        # OpenCelliD's `unit` is the UMTS PSC / LTE PCI; an explicit pci column wins.
        optional={"pci": ("pci", "unit"), "arfcn": ("earfcn", "arfcn", "nrarfcn", "uarfcn")},
        headerless=(
            "radio", "mcc", "net", "area", "cell", "unit", "lon", "lat", "range", "samples", "changeable",
            "created", "updated", "averagesignal",
        ),
    )
)

# Optional columns accepted in every layout (case-insensitive aliases).
COMMON_OPTIONAL: dict[str, tuple[str, ...]] = {
    "azimuth": ("azimuth", "azimuth_deg", "azi"),
    "tilt": ("tilt", "downtilt", "tilt_deg", "downtilt_deg"),
    "height": ("height", "height_m", "antenna_height", "antenna_height_m"),
    "power": ("power", "tx_power_dbm", "tx_power", "power_dbm"),
    "bandwidth_hz": ("bandwidth_hz",),
    "bandwidth_mhz": ("bandwidth_mhz",),
    "bandwidth": ("bandwidth", "bw"),  # MHz when <= 1000, else Hz
}


__all__ = ["COMMON_OPTIONAL", "LAYOUTS", "Layout", "register_layout"]
