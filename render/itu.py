"""ITU-R P.2040 material fits outside their tabulated frequency ranges.

Sionna RT's ITU materials raise for a carrier outside the ranges of ITU-R P.2040-4 Table 3 (e.g. concrete and
marble below 1 GHz, so every LTE band-20/28 cell at 700-800 MHz). The fits are power laws,
eps_r = a f^b and sigma = c f^d (f in GHz, §2.1.4); :func:`extend_itu_materials` makes a scene's ITU materials
use the fit of the nearest tabulated range when the carrier lies outside all of them (an extrapolation,
logged and recorded), and Sionna's own values inside the ranges. The fits themselves: :mod:`twin.itu`.
"""

from __future__ import annotations

import logging

from twin.itu import itu_parameters

log = logging.getLogger(__name__)
_WARNED: set[tuple[str, int]] = set()


def extend_itu_materials(scene) -> None:
    """Give every ITU material of ``scene`` a frequency callback that extrapolates outside the ITU ranges."""
    import mitsuba as mi
    from sionna.rt import ITURadioMaterial

    for mat in scene.radio_materials.values():
        if not isinstance(mat, ITURadioMaterial) or getattr(mat, "_twin_extended", False):
            continue
        itu_type = mat.itu_type

        def cb(f, _t=itu_type):
            fz = float(f[0]) if hasattr(f, "__len__") else float(f)
            eps, sigma, extra = itu_parameters(_t, fz)
            if extra and (_t, round(fz)) not in _WARNED:
                _WARNED.add((_t, round(fz)))
                log.info("ITU material %r has no ITU-R P.2040 fit at %.1f MHz: extrapolating the nearest range", _t, fz / 1e6)
            return mi.Float(eps), mi.Float(sigma)

        mat.frequency_update_callback = cb
        mat._twin_extended = True


def extrapolated_materials(scene, frequency_hz: float) -> list[str]:
    """ITU material types of ``scene`` that are extrapolated at ``frequency_hz`` (for shard metadata)."""
    from sionna.rt import ITURadioMaterial

    out = set()
    for mat in scene.radio_materials.values():
        if isinstance(mat, ITURadioMaterial) and itu_parameters(mat.itu_type, frequency_hz)[2]:
            out.add(mat.itu_type)
    return sorted(out)
