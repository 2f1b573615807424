"""Deterministic task keys and seeds shared by the trace and view stages (a core module).

A key is a hash of everything that determines a task's output, so a re-run skips finished tasks and Dask keys
are stable across runs and machines.
"""

from __future__ import annotations

import hashlib
import json


def task_digest(*parts: object) -> str:
    """20 hex digits of sha256 over the JSON of ``parts`` (sorted keys, NUL-separated)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\x00")
    return h.hexdigest()[:20]


def task_seed(seed: int, key: str) -> int:
    """A task's seed from the build seed and its key (deterministic, independent of scheduling)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:4], "little")


__all__ = ["task_digest", "task_seed"]
