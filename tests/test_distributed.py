"""Data-parallel runs on gloo with 2 processes match a single process on the same points; a dead rank
ends the run with an error instead of a hang."""
import socket

import numpy as np
import pytest
import torch.multiprocessing as mp

import kinn

RUN = dict(steps=15, lbfgs=5, n_interior=200, n_boundary=80, n_eval=300, eval_every=5, log_every=5,
           dtype="float64", progress=False, model={"widths": [8, 8]}, device="cpu")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, out, fail_rank, timeout, queue):
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    try:
        if rank == fail_rank:
            dist.init_process_group("gloo", timeout=__import__("datetime").timedelta(seconds=timeout))
            raise SystemExit(1)  # dies before the first all-reduce
        r = kinn.solve("poisson2d", out=out, name="ddp", dist_timeout=timeout, **RUN)
        queue.put((rank, "ok", [row["loss"] for row in r.history.rows], r.errors, r.run_dir is not None))
    except Exception as e:  # noqa: BLE001 - reported to the test
        queue.put((rank, type(e).__name__, str(e), None, None))


def _spawn(tmp_path, fail_rank=-1, timeout=60.0):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(r, 2, _port.cache, str(tmp_path), fail_rank, timeout, queue))
             for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    out = {}
    while not queue.empty():
        rank, *rest = queue.get()
        out[rank] = rest
    return out


@pytest.fixture(autouse=True)
def port():
    _port.cache = _port()


def test_two_ranks_match_one_process(tmp_path):
    single = kinn.solve("poisson2d", write=False, **RUN)
    out = _spawn(tmp_path)
    assert set(out) == {0, 1} and out[0][0] == "ok" and out[1][0] == "ok", out
    for rank in (0, 1):  # identical on both ranks, and equal to the single process up to summation order
        np.testing.assert_allclose(out[rank][1], [r["loss"] for r in single.history.rows], rtol=1e-8)
        assert out[rank][2]["rel_l2/u"] == pytest.approx(single.errors["rel_l2/u"], rel=1e-6)
    assert out[0][3] and not out[1][3], "only rank 0 writes the run directory"
    assert (tmp_path / "ddp" / "result.json").is_file()


def test_a_dead_rank_ends_the_run_with_an_error(tmp_path):
    out = _spawn(tmp_path, fail_rank=1, timeout=5.0)
    assert out[0][0] == "KinnError" and "another rank probably died" in out[0][1], out
