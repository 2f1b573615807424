"""osmnx sessions: an on-disk cache and a fast failure when Overpass cannot be reached."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


def cache_dir() -> Path:
    """osmnx HTTP cache: ``$TWIN_CACHE_DIR/osmnx``, else ``$XDG_CACHE_HOME/twin/osmnx`` or ``~/.cache/twin/osmnx``."""
    base = os.environ.get("TWIN_CACHE_DIR")
    if base:
        return Path(base) / "osmnx"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "twin" / "osmnx"


def reachable(url: str, timeout_s: float = 5.0) -> bool:
    """True when a TCP connection to the host of ``url`` opens within ``timeout_s`` seconds."""
    u = urlparse(url)
    port = u.port or (443 if u.scheme == "https" else 80)
    try:
        with socket.create_connection((u.hostname or "", port), timeout=timeout_s):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def osmnx_session(folder: str | Path | None = None) -> Iterator[Any]:
    """osmnx with its cache in ``folder`` (default :func:`cache_dir`); settings restored on exit.

    When the Overpass host is unreachable, osmnx's rate limiting (which waits ~60 s on the status endpoint)
    is turned off for the session: a cached answer still loads and a cache miss fails at once.
    """
    import osmnx as ox

    folder = Path(folder) if folder is not None else cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    old = (ox.settings.use_cache, ox.settings.cache_folder, ox.settings.overpass_rate_limit)
    try:
        ox.settings.use_cache = True
        ox.settings.cache_folder = str(folder)
        if not reachable(ox.settings.overpass_url):
            ox.settings.overpass_rate_limit = False
        yield ox
    finally:
        ox.settings.use_cache, ox.settings.cache_folder, ox.settings.overpass_rate_limit = old
