"""Find a shared libLLVM (>= 16) for Dr.Jit's CPU backend and set ``DRJIT_LIBLLVM_PATH`` before Mitsuba loads.

LLVM 15 and older fail inside Sionna RT with ``Cannot select: fminimum``; Debian/Ubuntu ship ``libllvm19``.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass

MIN_LLVM = 16
_SEARCH = (
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib",
    "/opt/homebrew/opt/llvm/lib",
    "/usr/local/opt/llvm/lib",
)
INSTALL_HINT = (
    "install a shared libLLVM 16 or newer, e.g. `sudo apt-get install -y libllvm19` (Debian/Ubuntu) or "
    "`brew install llvm` (macOS), or point DRJIT_LIBLLVM_PATH at an existing libLLVM.so"
)


@dataclass(frozen=True)
class LLVMInfo:
    path: str | None
    version: int | None
    reason: str  # how it was found, or why none works


def _version_of(path: str) -> int | None:
    name = os.path.basename(os.path.realpath(path))
    m = re.search(r"LLVM[-.]?(\d+)", name) or re.search(r"LLVM[-.]?(\d+)", os.path.basename(path))
    return int(m.group(1)) if m else None


def find_libllvm() -> LLVMInfo:
    """The libLLVM Dr.Jit should use: ``DRJIT_LIBLLVM_PATH`` if set and usable, else the newest >= 16 found."""
    env = os.environ.get("DRJIT_LIBLLVM_PATH")
    if env:
        if not os.path.exists(env):
            return LLVMInfo(None, None, f"DRJIT_LIBLLVM_PATH={env} does not exist; {INSTALL_HINT}")
        v = _version_of(env)
        if v is not None and v < MIN_LLVM:
            return LLVMInfo(env, v, f"DRJIT_LIBLLVM_PATH={env} is LLVM {v} (< {MIN_LLVM}); {INSTALL_HINT}")
        return LLVMInfo(env, v, "from DRJIT_LIBLLVM_PATH")
    found: list[tuple[int, str]] = []
    for d in _SEARCH:
        for p in glob.glob(os.path.join(d, "libLLVM*.so*")) + glob.glob(os.path.join(d, "libLLVM*.dylib")):
            v = _version_of(p)
            if v is not None:
                found.append((v, p))
    good = sorted((vp for vp in found if vp[0] >= MIN_LLVM), key=lambda vp: (vp[0], -len(vp[1])), reverse=True)
    if good:
        v, p = good[0]
        return LLVMInfo(p, v, "found on the system")
    if found:
        vs = sorted({v for v, _ in found})
        return LLVMInfo(None, max(vs), f"only LLVM {vs} found (Sionna needs >= {MIN_LLVM}); {INSTALL_HINT}")
    return LLVMInfo(None, None, f"no libLLVM found; {INSTALL_HINT}")


def ensure_llvm_env() -> LLVMInfo:
    """Set ``DRJIT_LIBLLVM_PATH`` for this process (and the Dask workers it starts) when a usable one is found."""
    info = find_libllvm()
    if info.path and info.version and info.version >= MIN_LLVM:
        os.environ["DRJIT_LIBLLVM_PATH"] = info.path
    return info


def has_cuda() -> bool:
    """Whether an NVIDIA driver is visible (libcuda loads)."""
    import ctypes

    for name in ("libcuda.so.1", "libcuda.so"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def gpu_count() -> int:
    """Number of CUDA devices the driver reports (0 without a driver or a device); honours CUDA_VISIBLE_DEVICES."""
    import ctypes

    for name in ("libcuda.so.1", "libcuda.so"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        n = ctypes.c_int(0)
        if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(n)) != 0:
            return 0
        return int(n.value)
    return 0


#: Environment variable choosing the trace device: ``auto`` (CUDA when a GPU is there), ``cpu`` or ``cuda``.
DEVICE_ENV = "TWIN_DEVICE"


def setup_mitsuba(prefer_cuda: bool = True) -> str:
    """Select the Mitsuba variant Sionna RT needs: CUDA when a GPU is present, LLVM otherwise (``$TWIN_DEVICE``
    forces one). Returns it."""
    ensure_llvm_env()
    import mitsuba as mi

    device = os.environ.get(DEVICE_ENV, "auto").strip().lower() or "auto"
    if device not in ("auto", "cpu", "cuda"):
        raise RuntimeError(f"{DEVICE_ENV}={device!r}: use auto, cpu or cuda")
    wanted = {"auto": ("cuda_ad_mono_polarized", "llvm_ad_mono_polarized"), "cpu": ("llvm_ad_mono_polarized",),
              "cuda": ("cuda_ad_mono_polarized",)}[device]
    current = mi.variant()
    if current in wanted:
        return current
    candidates = [v for v in wanted if v.startswith("llvm") or (prefer_cuda and has_cuda())]
    if not candidates:
        raise RuntimeError(f"{DEVICE_ENV}=cuda but no CUDA driver is visible on this machine")
    last: Exception | None = None
    for v in candidates:
        try:
            mi.set_variant(v)
            return v
        except Exception as e:  # noqa: BLE001 - try the next variant
            last = e
    raise RuntimeError(f"no Mitsuba variant for Sionna RT works ({last}); {INSTALL_HINT}")
