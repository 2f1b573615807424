"""torch datasets over a :class:`twin.datasets.access.Reader`, and a collate function for variable-size sets.

:class:`MapDataset` is map-style (``len`` + indexing, any sampler). :class:`UnitIterableDataset` streams
(file, row group) units: unit ``k`` of the (seeded, per-epoch) unit order goes to the consumer
``k mod (world_size * num_workers)``, consumer = ``rank * num_workers + worker_id``, so every row is read
exactly once per epoch over all DataLoader workers and ``torch.distributed`` ranks. Ranks may then see
a few rows more or less than each other (units differ in size); with DDP use ``drop_last`` or a join.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info


def _to_torch(batch: list[Any]):
    if any(isinstance(b, str | list) for b in batch):  # strings, lists of strings, ragged nested lists
        return list(batch)
    arrs = [np.asarray(b) for b in batch]
    if arrs[0].dtype == object or arrs[0].dtype.kind in "US":
        return list(batch)
    if arrs[0].dtype == np.uint64:  # torch has no full uint64 support: ids stay numpy
        return np.stack(arrs) if all(a.shape == arrs[0].shape for a in arrs) else list(arrs)
    if all(a.shape == arrs[0].shape for a in arrs):
        return torch.from_numpy(np.stack(arrs))
    return None  # variable size: padded by the caller


def pad_stack(arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad arrays of equal rank to the largest size on every axis and stack them.

    Returns (values (B, *max_shape), mask (B, max_len0) bool: True where axis 0 holds a real element).
    """
    arrs = [np.asarray(a) for a in arrays]
    nd = max(a.ndim for a in arrs)
    arrs = [a.reshape(a.shape + (0,) * 0) if a.ndim == nd else a.reshape((len(a),) + (1,) * (nd - 1)) for a in arrs]
    shape = tuple(max(a.shape[d] for a in arrs) for d in range(nd))
    out = np.zeros((len(arrs), *shape), dtype=np.result_type(*[a.dtype for a in arrs]))
    mask = np.zeros((len(arrs), shape[0] if nd else 1), dtype=bool)
    for i, a in enumerate(arrs):
        out[(i, *tuple(slice(0, n) for n in a.shape))] = a  # type: ignore[index]  # (row, slices)
        mask[i, : a.shape[0] if nd else 1] = True
    return out, mask


def collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch reader samples: equal shapes are stacked into tensors; variable-size sets (per-link paths,
    per-receiver cell sets) are zero-padded and get a ``<key>_mask`` (B, max_len) bool tensor beside them;
    strings and lists of strings stay Python lists; uint64 ids stay numpy."""
    out: dict[str, Any] = {}
    for key in samples[0]:
        vals = [s[key] for s in samples]
        got = _to_torch(vals)
        if got is None:
            padded, mask = pad_stack(vals)
            out[key] = torch.from_numpy(padded)
            out[f"{key}_mask"] = torch.from_numpy(mask)
        else:
            out[key] = got
    return out


class MapDataset(Dataset):
    """Map-style dataset: ``ds[i]`` is ``reader[i]`` (a dict of numpy values)."""

    def __init__(self, reader) -> None:
        self.reader = reader

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.reader[i]


def _consumer() -> tuple[int, int]:
    """(this consumer's index, number of consumers) over distributed ranks x DataLoader workers."""
    rank, world = 0, 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    info = get_worker_info()
    wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
    return rank * nw + wid, world * nw


class UnitIterableDataset(IterableDataset):
    """Streams the reader's (file, row group) units, each row once per epoch over workers and ranks."""

    def __init__(self, reader, *, shuffle_buffer: int = 0, seed: int = 0, shuffle_units: bool = False) -> None:
        if shuffle_buffer < 0:
            raise ValueError(f"shuffle_buffer must be >= 0, got {shuffle_buffer}")
        self.reader = reader
        self.shuffle_buffer = int(shuffle_buffer)
        self.seed = int(seed)
        self.shuffle_units = shuffle_units
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """A new unit order and row shuffle for ``epoch`` (same on every worker and rank)."""
        self.epoch = int(epoch)

    def units_for(self, consumer: int, consumers: int) -> list:
        units = list(self.reader.units)
        if self.shuffle_units:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(units))
            units = [units[i] for i in order]
        return units[consumer::consumers]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        me, n = _consumer()
        rows = (s for u in self.units_for(me, n) for s in self.reader.iter_unit(u))
        if self.shuffle_buffer <= 1:
            yield from rows
            return
        rng = np.random.default_rng([self.seed, self.epoch, me])
        buf: list[dict[str, Any]] = []
        for s in rows:
            if len(buf) < self.shuffle_buffer:
                buf.append(s)
                continue
            j = int(rng.integers(len(buf)))
            yield buf[j]
            buf[j] = s
        rng.shuffle(buf)  # type: ignore[arg-type]
        yield from buf
