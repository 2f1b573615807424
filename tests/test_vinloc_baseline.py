"""vinloc / fingerprint_resnet baselines on a synthetic cir_taps table; scenario geometry helpers."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import shapely
import torch

from twin.constants import SPEED_OF_LIGHT
from twin.datasets.cir_taps import CirTapsConfig
from twin.datasets.registry import ViewInputs, get_view
from twin.datasets.synthetic import make_cir_table, make_towers_table


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class _Build:
    url = "memory://synthetic"


class _Reader:
    """The part of a twin Reader the set baselines use: a cir_taps table."""

    def __init__(self, table: pa.Table) -> None:
        self.table, self.build, self.name = table, _Build(), "cir_taps"

    def to_table(self) -> pa.Table:
        return self.table

    def __len__(self) -> int:
        return self.table.num_rows


class _Run:
    def __init__(self):
        self.losses, self.saved = [], 0

    def progress(self, *a, **k):
        pass

    def log_loss(self, step, loss, split="train", **_):
        self.losses.append((step, loss, split))

    def checkpoint_due(self, step):
        return False

    def save_checkpoint(self, state):
        self.saved += 1

    def load_checkpoint(self):
        return None


def _los_view(n_rx: int, seed: int = 0) -> pa.Table:
    """6 fixed TRPs, UEs (drawn with ``seed``) on a 100 m x 30 m street, one LOS path per link at the true
    distance (global sync)."""
    t = np.random.default_rng(99)
    trp = np.c_[t.uniform(-60, 60, 6), t.choice([-30.0, 30.0], 6), t.uniform(20, 30, 6)]
    rng = np.random.default_rng(seed)
    links, lid = [], 0
    for r in range(n_rx):
        ue = (rng.uniform(-50, 50), rng.uniform(-15, 15), 1.5)
        for k in range(6):
            d = float(np.linalg.norm(trp[k] - ue))
            lid += 1
            links.append(dict(link_id=lid, tx_id=f"t{k}", rx_id=r, tau_s=[d / SPEED_OF_LIGHT], a=[1e-3 / d],
                              tx=tuple(trp[k]), rx=ue))
    cells = [dict(cell_id=f"t{k}", x=trp[k, 0], y=trp[k, 1], z=trp[k, 2]) for k in range(6)]
    vin = ViewInputs(cir=make_cir_table(links), towers=make_towers_table(cells),
                     receivers=pa.table({"rx_id": pa.array([], pa.int64())}), scene_path="", seed=1, manifest={})
    return get_view("cir_taps")(vin, CirTapsConfig(num_taps=128, max_cells=6))


def _small(**kw):
    from twin.baselines.vinloc import VinLocConfig

    base = dict(epochs=15, batch_size=8, lr=1e-3, beta1=0.9, dim=32, blocks=1, mlp_dim=64, head_hidden=32,
                unet_base=4, resnet_width=8)
    base.update(kw)
    return VinLocConfig(**base)


@pytest.mark.parametrize("name,kw", [("vinloc", {}), pytest.param("vinloc", {"subset_size": 4}, marks=pytest.mark.slow),
                                     ("fingerprint_resnet", {}),
                                     pytest.param("fingerprint_resnet", {"subset_size": 4}, marks=pytest.mark.slow)])
def test_fit_predict_beats_the_mean_position(name, kw):
    from twin.baselines import BASELINES

    train, test = _Reader(_los_view(32, 0)), _Reader(_los_view(12, 5))
    model = BASELINES.get(name)(_small(**kw), seed=0)
    run = _Run()
    model.fit(train, None, run=run)
    losses = [loss for _, loss, s in run.losses if s == "train"]
    assert len(losses) == 15 and losses[-1] < 0.8 * losses[0] and run.saved == 1
    df = model.predict(test)
    assert list(df.columns[:4]) == ["rx_id", "pred_x", "pred_y", "pred_z"] and len(df) == 12
    assert (df["num_trps"] == (kw.get("subset_size") or 6)).all()
    truth = df[["true_x", "true_y", "true_z"]].to_numpy()
    np.testing.assert_allclose(df["error"], np.linalg.norm(df[["pred_x", "pred_y", "pred_z"]].to_numpy() - truth, axis=1))
    mean_pos = _los_view(32, 0).to_pandas()[["rx_x", "rx_y", "rx_z"]].to_numpy().mean(0)
    assert df["error"].mean() < np.linalg.norm(truth - mean_pos, axis=1).mean()
    # state round trip: the same predictions
    again = BASELINES.get(name)(_small(**kw), seed=0)
    again.load_state_dict(model.state_dict())
    np.testing.assert_allclose(again.predict(test)["pred_x"], df["pred_x"], rtol=1e-5, atol=1e-4)


def test_set_data_slots_follow_the_trp_list_and_test_subsets_are_fixed():
    from twin.baselines.vinloc import set_data, test_subsets
    from twin.datasets.access import table_columns

    cols = table_columns(_los_view(5, 1))
    trps = [f"t{k}" for k in range(6)]
    d = set_data(cols, trps, "cir")
    assert d.x.shape == (5, 6, 3, 1, 128) and d.mask.all()
    for r in range(5):
        for k, t in enumerate(cols["tx_ids"][r]):  # the view's order (strongest first) -> slot of TRP t
            j = trps.index(t)
            np.testing.assert_allclose(d.x[r, j, 2, 0], np.abs(cols["cir"][r, k, 0]), rtol=1e-6)
            np.testing.assert_allclose(d.pos[r, j], cols["cell_position"][r, k])
    a = test_subsets(d.rx_id, d.mask, 4, 7)
    assert (a.sum(1) == 4).all() and np.array_equal(a, test_subsets(d.rx_id, d.mask, 4, 7))
    assert np.array_equal(a[1:], test_subsets(d.rx_id[1:], d.mask[1:], 4, 7))  # by rx_id, not by row


def test_main_avenue_and_rooftop_sampling():
    from twin.reproductions.vinloc_scenarios import lining_buildings, main_avenue, uniform_in_polygons

    # a 30 m wide street heading east from a plaza at the origin, blocks on both sides, a block due north
    south = [shapely.box(x, -60, x + 40, -15) for x in range(130, 400, 50)]
    north = [shapely.box(x, 15, x + 40, 60) for x in range(130, 400, 50)]
    city = shapely.box(-450, -450, 450, 450).difference(shapely.Point(0, 0).buffer(130)).difference(
        shapely.box(0, -65, 450, 65))  # everything else is built up
    other = [city]
    st = main_avenue(south + north + other, (-450, -450, 450, 450), (0.0, 0.0), start_m=120.0)
    assert abs(st.bearing_deg - 90.0) <= 1.0 and st.half_width_m == pytest.approx(15.0, abs=0.6)
    assert st.end[0] > 400 and abs(st.end[1]) < 5
    lining = lining_buildings(south + north + other, st)
    assert len(lining) == len(south) + len(north)
    pts = uniform_in_polygons(lining, 12, np.random.default_rng(0))
    union = shapely.union_all(lining)
    assert len(pts) == 12 and all(union.contains(shapely.Point(p)) for p in pts)
    assert min(np.hypot(*(pts[i] - pts[j])) for i in range(12) for j in range(i)) >= 6.0


def test_tower_csv_reads_back_as_40_ghz_nr_cells(tmp_path):
    from twin.frame import LocalFrame
    from twin.ingest.arfcn import nr_arfcn_to_frequency_hz
    from twin.reproductions.vinloc_scenarios import carrier_arfcn, write_tower_csv

    n = carrier_arfcn(40e9)
    assert abs(nr_arfcn_to_frequency_hz(n) - 40e9) < 1e6
    fr = LocalFrame(48.8734, 2.2968)
    xy = np.array([[10.0, 20.0], [-50.0, 5.0], [100.0, -80.0]])
    p = write_tower_csv(tmp_path / "t.csv", xy, fr)
    import csv

    rows = list(csv.DictReader(open(p)))
    assert len(rows) == 3 and {r["type"] for r in rows} == {"NR"} and len({r["CID"] for r in rows}) == 3
    x, y = fr.to_local(np.array([float(r["longitude"]) for r in rows]), np.array([float(r["latitude"]) for r in rows]))
    np.testing.assert_allclose(np.c_[x, y], xy, atol=0.01)
