"""Shared test setup: find libLLVM for Dr.Jit before anything imports Mitsuba; keep Dr.Jit to 2 threads."""

from __future__ import annotations

import os

os.environ.setdefault("TWIN_DRJIT_THREADS", "2")

from twin.llvm import ensure_llvm_env  # noqa: E402

ensure_llvm_env()
