"""The training loop's batch producer (hum2band.train.loop.batches)."""

import numpy as np
import torch

from hum2band.train.loop import batches


def _make(rng):
    return torch.from_numpy(rng.normal(size=(2, 3)).astype(np.float32)), int(rng.integers(1000))


def _take(stream, n):
    out = [next(stream) for _ in range(n)]
    stream.close()
    return out


def test_one_worker_gives_the_batches_made_in_process():
    here = _take(batches(_make, seed=5, workers=0), 6)
    there = _take(batches(_make, seed=5, workers=1), 6)
    for (xa, ka), (xb, kb) in zip(here, there):
        assert isinstance(xb, torch.Tensor) and xb.dtype == torch.float32
        assert torch.equal(xa, xb) and ka == kb


def test_another_seed_gives_other_batches():
    a = _take(batches(_make, seed=5, workers=1), 3)
    b = _take(batches(_make, seed=6, workers=1), 3)
    assert not any(torch.equal(x[0], y[0]) for x, y in zip(a, b))


def test_two_workers_draw_from_different_streams():
    got = _take(batches(_make, seed=5, workers=2), 8)
    keys = {x[0].numpy().tobytes() for x in got}
    assert len(keys) == 8  # no batch made twice


def test_closing_the_stream_stops_its_workers():
    import multiprocessing as mp

    stream = batches(_make, seed=1, workers=2)
    next(stream)
    assert len(mp.active_children()) >= 2
    stream.close()
    assert not [p for p in mp.active_children() if p.is_alive()]
