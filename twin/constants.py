"""Physical constants and fixed numbers used by every stage (one place; SI units)."""

from __future__ import annotations

#: Speed of light in vacuum, m/s (exact, SI definition).
SPEED_OF_LIGHT = 299_792_458.0
#: Boltzmann constant, J/K (exact, SI definition).
BOLTZMANN = 1.380_649e-23
#: Reference noise temperature, K (ITU-R / 3GPP convention for thermal noise -174 dBm/Hz).
T0_K = 290.0

__all__ = ["BOLTZMANN", "SPEED_OF_LIGHT", "T0_K"]
