"""Physical constants and fixed numbers used by every stage (one place; SI units)."""

from __future__ import annotations

#: Speed of light in vacuum, m/s (exact, SI definition).
SPEED_OF_LIGHT = 299_792_458.0
#: Boltzmann constant, J/K (exact, SI definition).
BOLTZMANN = 1.380_649e-23
#: Reference noise temperature, K (ITU-R / 3GPP convention for thermal noise -174 dBm/Hz).
T0_K = 290.0

#: Links (tower-receiver pairs) per second a build traces with the default ``[trace]`` config when nothing better
#: is known, for ``twin build --dry-run`` estimates. Measured on the 2-core CPU development machine (Dr.Jit LLVM,
#: default local cluster, Paris offline, 24 receivers x 36 cells, depth 3, 1e5 samples per source, diffraction):
#: ``twin build --city paris --offline --out OUT --receivers 24`` traced 864 pairs in 17.9 s = 48.4 links/s
#: (stages.trace.links_per_s, machine shared with other jobs, Dask start-up included). A build records its own rate (``twin.json``
#: ``stages.trace.links_per_s``) and a later dry run of it uses that instead; ``twin bench trace`` measures a machine.
DEFAULT_TRACE_LINKS_PER_S = 48.0
#: A plan of more tower-receiver pairs than this gets a warning before it is traced (the cost and the size of
#: the CIR grow with the pairs; ``--dry-run`` shows the estimate, ``--max-links`` caps it).
LARGE_PLAN_PAIRS = 100_000

__all__ = ["BOLTZMANN", "DEFAULT_TRACE_LINKS_PER_S", "LARGE_PLAN_PAIRS", "SPEED_OF_LIGHT", "T0_K"]
