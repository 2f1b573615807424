"""``twin doctor``: can a build run here? Versions, Mitsuba variants that work, libLLVM, CUDA."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field

from twin.llvm import ensure_llvm_env, has_cuda
from twin.manifest import package_versions

_PROBE = r"""
import sys, mitsuba as mi, drjit as dr
v = sys.argv[1]
mi.set_variant(v)
import sionna.rt as rt
s = rt.load_scene()  # empty scene: compiles and runs a kernel on this backend
x = dr.llvm.Float([1.0, 2.0]) if v.startswith('llvm') else dr.cuda.Float([1.0, 2.0])
assert dr.sum(x * 2.0)[0] == 6.0
print('ok')
"""


@dataclass
class DoctorReport:
    versions: dict[str, str]
    llvm_path: str | None
    llvm_version: int | None
    llvm_reason: str
    cuda: bool
    variants: dict[str, str] = field(default_factory=dict)  # variant -> "ok" | error
    gpus: int = 0
    layout: str = ""  # how `twin build` lays out its local Dask cluster here

    @property
    def can_build(self) -> bool:
        return any(v == "ok" for v in self.variants.values())


def probe_variant(variant: str, timeout_s: float = 120.0) -> str:
    """Run a tiny Sionna/Dr.Jit job on ``variant`` in a fresh process; "ok" or the error's last line."""
    try:
        r = subprocess.run([sys.executable, "-c", _PROBE, variant], capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout_s:.0f} s"
    if r.returncode == 0 and r.stdout.strip().endswith("ok"):
        return "ok"
    lines = [ln for ln in (r.stderr or r.stdout).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit code {r.returncode}"


def run_doctor() -> DoctorReport:
    info = ensure_llvm_env()
    cuda = has_cuda()
    rep = DoctorReport(package_versions(), info.path, info.version, info.reason, cuda)
    if info.path:
        rep.variants["llvm_ad_mono_polarized"] = probe_variant("llvm_ad_mono_polarized")
    else:
        rep.variants["llvm_ad_mono_polarized"] = info.reason
    if cuda:
        rep.variants["cuda_ad_mono_polarized"] = probe_variant("cuda_ad_mono_polarized")
    from twin.cluster import local_layout
    from twin.config import DaskConfig
    from twin.llvm import gpu_count

    rep.gpus = gpu_count() if cuda else 0
    rep.layout = local_layout(DaskConfig(), gpus=rep.gpus).describe()
    if rep.gpus and rep.variants.get("cuda_ad_mono_polarized") == "ok":
        rep.layout += "; traces on cuda_ad_mono_polarized"
    else:
        rep.layout += "; traces on llvm_ad_mono_polarized (CPU)"
    return rep
