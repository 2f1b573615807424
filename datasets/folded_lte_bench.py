"""Bench of the folded-LTE view (``twin bench views --only folded_lte``): the view on synthetic 20-path CIRs
beside the cost per link of tracing them with Sionna RT."""

from __future__ import annotations

import time

import pyarrow as pa

from twin.datasets.bench import BenchResult, register_bench
from twin.datasets.folded_lte import VIEW, FoldedLteConfig
from twin.datasets.registry import ViewInputs


@register_bench("folded_lte")
def bench(quick: bool = False) -> list[BenchResult]:
    """The folded-LTE view on synthetic 20-path CIRs (4 co-channel 10 MHz cells per receiver, 10 frames),
    beside the cost per link of tracing them (Sionna RT, street canyon, TraceConfig's depth 3 and 1e5 samples)."""
    from twin.datasets.spike_train import best_of, sionna_reference_paths, synthetic_cir

    nl = 8 if quick else 32
    cir, towers = synthetic_cir(nl, 20, carrier_hz=2.1e9)
    vin = ViewInputs(cir=cir, towers=towers, receivers=pa.table({"rx_id": pa.array([], pa.int64())}),
                     scene_path="", seed=1, manifest={})
    cfg = FoldedLteConfig()
    t = best_of(lambda: VIEW(vin, cfg), 1 if quick else 2)
    n_rx = 16 if quick else 64
    sionna_reference_paths(4, max_depth=3)  # scene load + JIT warm-up
    t0 = time.perf_counter()
    sionna_reference_paths(n_rx, max_depth=3)
    t_trace = (time.perf_counter() - t0) / n_rx
    return [
        BenchResult("folded_lte/view", nl / t, "samples (receiver, cell)", t,
                    {"links": nl, "frames": cfg.num_frames, "ms_per_link": 1e3 * t / nl,
                     "trace_ms_per_link": 1e3 * t_trace, "view_over_trace": (t / nl) / t_trace}),
    ]
