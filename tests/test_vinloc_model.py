"""VIn-Loc and fingerprinting ResNet modules: shapes, padding invariance, training reduces the loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from twin.baselines.vinloc_model import (
    FingerprintResNet,
    FrequencyEncoding,
    VinLocNet,
    cir_features,
    compact,
    l2_loss,
    predict_batches,
    random_subsets,
    train_loop,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """The test machine is shared: one intra-op thread avoids oversubscription (45x slower with 2 on 2 busy cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _small_net(**kw):
    return VinLocNet(3, 1, 32, dim=32, blocks=2, heads=4, mlp_dim=64, head_hidden=32, unet_base=4, **kw)


def test_features_and_shapes():
    h = (np.random.default_rng(0).standard_normal((2, 5, 1, 256)) + 1j).astype(np.complex64)
    f = cir_features(h)
    assert f.shape == (2, 5, 3, 1, 256)
    np.testing.assert_allclose(f[..., 2, :, :].numpy(), np.abs(h), rtol=1e-6)
    np.testing.assert_allclose(f[..., 0, :, :].numpy(), h.real)
    net = VinLocNet(3, 1, 256)  # the paper's sizes
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    out = net.eval()(f, torch.zeros(2, 5, 3), mask)
    assert out.shape == (2, 3)
    n_tokens = net.loc.shape[-1]
    assert n_tokens == 512 and len(net.encoder.layers) == 4
    assert net.encoder.layers[0].linear1.out_features == 1024 and net.encoder.layers[0].self_attn.num_heads == 4
    arr = VinLocNet(1, 8, 64, dim=32, unet_base=4)(torch.zeros(2, 3, 1, 8, 64), torch.zeros(2, 3, 3),
                                                   torch.ones(2, 3, dtype=torch.bool))
    assert arr.shape == (2, 3)  # 8-antenna AoA-ToF input: 3 x 3 kernels
    fp = FingerprintResNet(5, 3, 1, width=8)
    assert fp(f, None, mask).shape == (2, 3)
    enc = FrequencyEncoding(4)(torch.tensor([[0.5, -0.25, 0.0]]))
    assert enc.shape == (1, 27) and enc[0, 1] == pytest.approx(np.sin(np.pi * 0.5), abs=1e-6)


def test_padding_trps_does_not_change_the_output():
    torch.manual_seed(0)
    net = _small_net().eval()
    x = torch.randn(3, 4, 3, 1, 32)
    pos = torch.randn(3, 4, 3)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    base = net(x, pos, mask)
    # pad with 5 more slots full of garbage, masked out
    xp = torch.cat([x, 100 * torch.randn(3, 5, 3, 1, 32)], 1)
    pp = torch.cat([pos, 50 * torch.randn(3, 5, 3)], 1)
    mp = torch.cat([mask, torch.zeros(3, 5, dtype=torch.bool)], 1)
    torch.testing.assert_close(net(xp, pp, mp), base, atol=1e-5, rtol=1e-5)
    # garbage in the already-masked slot 3 of rows 0 and 1 changes nothing either; the permutation of real TRPs neither
    x2 = x.clone()
    x2[0, 3] = 7.0
    x2[1, 2:] = -3.0
    torch.testing.assert_close(net(x2, pos, mask), base, atol=1e-5, rtol=1e-5)
    perm = torch.tensor([2, 0, 1, 3])
    torch.testing.assert_close(net(x[:1, perm], pos[:1, perm], mask[:1, perm]), base[:1], atol=1e-5, rtol=1e-5)
    # but a real TRP's CIR does matter
    x3 = x.clone()
    x3[0, 0] += 1.0
    assert not torch.allclose(net(x3, pos, mask)[0], base[0], atol=1e-4)
    # without positions the output does not depend on pos
    nopos = _small_net(use_positions=False).eval()
    torch.testing.assert_close(nopos(x, pos, mask), nopos(x, pos * 3, mask))


def _synthetic(n=48, m=4, d=32, seed=0):
    """UE on a line; each TRP's CIR a spike at the (scaled) UE-TRP distance: a learnable mapping."""
    rng = np.random.default_rng(seed)
    trp = rng.uniform(-1, 1, (m, 3))
    ue = np.c_[rng.uniform(-1, 1, (n, 2)), np.zeros(n)]
    dist = np.linalg.norm(ue[:, None] - trp[None], axis=-1)  # (n, m)
    h = np.zeros((n, m, 1, d), np.complex64)
    taps = np.arange(d)
    h[:, :, 0, :] = np.sinc(taps[None, None] - dist[..., None] * 8)
    x = cir_features(h).numpy()
    return x, np.broadcast_to(trp, (n, m, 3)).astype(np.float32).copy(), np.ones((n, m), bool), ue.astype(np.float32)


@pytest.mark.parametrize("kind", ["vinloc", "fingerprint"])
def test_a_few_epochs_reduce_the_loss(kind):
    torch.manual_seed(0)
    x, pos, mask, y = _synthetic()
    net = _small_net() if kind == "vinloc" else FingerprintResNet(4, 3, 1, width=8, head_hidden=32)
    before = float(l2_loss(torch.as_tensor(predict_batches(net, x, pos, mask)), torch.as_tensor(y)))
    hist = train_loop(net, x, pos, mask, y, epochs=12, batch_size=8, lr=1e-3, weight_decay=0.1, beta1=0.9,
                      gamma=0.993, seed=0)
    after = float(l2_loss(torch.as_tensor(predict_batches(net, x, pos, mask)), torch.as_tensor(y)))
    assert hist[-1] < 0.7 * hist[0] and after < before
    mean_pred = float(l2_loss(torch.as_tensor(np.broadcast_to(y.mean(0), y.shape).copy()), torch.as_tensor(y)))
    assert hist[-1] < mean_pred  # beats predicting the mean position


def test_subsets_and_compaction():
    rng = np.random.default_rng(1)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], bool)
    sub = random_subsets(mask, 3, rng)
    assert sub.sum(1).tolist() == [3, 2] and not np.any(sub & ~mask)
    x = np.arange(2 * 5, dtype=np.float32).reshape(2, 5, 1, 1, 1)
    pos = np.repeat(np.arange(5, dtype=np.float32)[None, :, None], 2, 0).repeat(3, 2)
    sel = np.array([[0, 1, 0, 1, 1], [1, 0, 1, 0, 0]], bool)
    xs, ps, ms = compact(x, pos, sel, 3)
    assert xs[:, :, 0, 0, 0].tolist() == [[1, 3, 4], [5, 7, 0]] and ms.tolist() == [[1, 1, 1], [1, 1, 0]]
    assert ps[0, :, 0].tolist() == [1, 3, 4]
