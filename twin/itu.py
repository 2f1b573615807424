"""ITU-R P.2040 material parameters at any carrier (a core module: ingest records where a fit is extrapolated,
render gives the scene's materials the extrapolating callback, :mod:`twin.render.itu`).

Sionna RT's table (``sionna.rt.radio_materials.itu.ITU_MATERIALS_PROPERTIES``) lists power-law fits
eps_r = a f^b and sigma = c f^d (f in GHz, ITU-R P.2040 §2.1.4) per frequency range; outside every range the
fit of the nearest range is used and flagged as extrapolated.
"""

from __future__ import annotations


def itu_parameters(itu_type: str, frequency_hz: float) -> tuple[float, float, bool]:
    """(eps_r, sigma [S/m], extrapolated) of ITU-R P.2040 material ``itu_type`` at ``frequency_hz``."""
    from sionna.rt.radio_materials.itu import ITU_MATERIALS_PROPERTIES

    if itu_type not in ITU_MATERIALS_PROPERTIES:
        raise ValueError(f"unknown ITU material {itu_type!r}")
    f_ghz = frequency_hz / 1e9
    ranges = ITU_MATERIALS_PROPERTIES[itu_type]
    for (lo, hi), (a, b, c, d) in ranges.items():
        if lo <= f_ghz <= hi:
            return a * f_ghz**b, c * f_ghz**d, False
    (lo, hi), (a, b, c, d) = min(ranges.items(), key=lambda kv: min(abs(f_ghz - kv[0][0]), abs(f_ghz - kv[0][1])))
    return a * f_ghz**b, c * f_ghz**d, True


def material_notes(materials, frequencies_hz) -> dict[str, list[float]]:
    """ITU materials whose ITU-R P.2040 fit is extrapolated at some carrier: {material: [carriers in Hz]}."""
    out: dict[str, list[float]] = {}
    for mname in sorted(set(materials)):
        try:
            bad = [float(f) for f in sorted(set(frequencies_hz)) if itu_parameters(mname, float(f))[2]]
        except ValueError:
            continue
        if bad:
            out[mname] = bad
    return out


__all__ = ["itu_parameters", "material_notes"]
