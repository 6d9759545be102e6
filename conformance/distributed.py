"""A real process group for ``--world-size=N``: N worker processes, one per rank, that run the candidate.

The pool is started once per session (``spawn``: each worker imports torch and the adapter afresh), joins a
``torch.distributed`` group (gloo on CPU; nccl when ``--device=cuda``, one GPU per rank where there are
enough, else gloo), and then serves calls: every rank receives its shard of one batch, runs the
candidate's own, unmodified code through :func:`conformance.runner.run_candidate` (forward and gradients,
under the per-call timeout), and sends back its outputs and gradients. Collectives inside the candidate
(an all-reduce of a box count) meet their peers on the other ranks, as in data-parallel training.

The pytest process is not a rank: the session's own torch state is untouched. Messages are ``torch.save``
bytes over pipes; a rank whose candidate raises reports the error, and its peers, left waiting in a
collective, are ended by the group's timeout.
"""

from __future__ import annotations

import io
import multiprocessing
import shutil
import tempfile
import traceback
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch

#: Seconds a collective may wait for its peers before the group gives up (a rank that raised or hung).
GROUP_TIMEOUT = 60.0


def _dumps(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _loads(data: bytes) -> Any:
    return torch.load(io.BytesIO(data), weights_only=False)


@dataclass
class RankResult:
    """One rank's answer: ``outputs`` and ``seen64`` as :func:`run_candidate` returns them, or ``error``
    (a one-paragraph description with the traceback) and ``not_provided`` (the adapter declined)."""

    rank: int
    outputs: dict | None = None
    seen64: dict | None = None
    error: str | None = None
    kind: str | None = None  # the ConformanceFailure class, when the call failed as one (timeout)
    not_provided: str | None = None


def _backend(device: str, world_size: int) -> str:
    if device == "cuda" and torch.cuda.is_available() and torch.cuda.device_count() >= world_size:
        return "nccl"
    return "gloo"


def _worker(rank: int, world_size: int, store: str, impl: str, device: str, conn) -> None:
    import torch.distributed as dist

    from .adapters import resolve
    from .runner import ConformanceFailure, NotProvided, run_candidate
    backend = _backend(device, world_size)
    if backend == "nccl":
        torch.cuda.set_device(rank)
    dist.init_process_group(backend, init_method=f"file://{store}", rank=rank, world_size=world_size,
                            timeout=timedelta(seconds=GROUP_TIMEOUT))
    adapter = resolve(impl)
    rank_device = f"cuda:{rank}" if backend == "nccl" else device
    conn.send_bytes(_dumps(("ready", backend)))
    try:
        while True:
            task = _loads(conn.recv_bytes())
            if task is None:
                break
            component, shard, config, profile, dtype, timeout = task
            try:
                outputs, seen64 = run_candidate(adapter, component, shard, config, profile, dtype, rank_device,
                                                timeout)
                reply = RankResult(rank, outputs=outputs, seen64=seen64)
            except NotProvided as err:
                reply = RankResult(rank, not_provided=str(err))
            except ConformanceFailure as err:
                reply = RankResult(rank, error=str(err), kind=err.kind)
            except Exception as err:  # noqa: BLE001 - the candidate's error, reported to the suite as such
                reply = RankResult(rank, error=f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=-6)}")
            conn.send_bytes(_dumps(reply))
    finally:
        dist.destroy_process_group()


class RankPool:
    """``world_size`` worker processes in one process group, serving calls of one adapter (module docstring)."""

    def __init__(self, impl: str, world_size: int, device: str = "cpu"):
        self.impl, self.world_size, self.device = impl, world_size, device
        self._dir = tempfile.mkdtemp(prefix="detconf-group-")
        context = multiprocessing.get_context("spawn")
        self._conns, self._procs = [], []
        for rank in range(world_size):
            parent, child = context.Pipe()
            proc = context.Process(target=_worker, name=f"detconf-rank-{rank}", daemon=True,
                                   args=(rank, world_size, str(Path(self._dir) / "store"), impl, device, child))
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        self.backend = None
        for rank in range(world_size):
            _, self.backend = self._receive(rank, GROUP_TIMEOUT + 120)

    def _receive(self, rank: int, timeout: float) -> Any:
        conn, proc = self._conns[rank], self._procs[rank]
        if not conn.poll(timeout):
            raise RuntimeError(f"rank {rank} of the --world-size={self.world_size} group did not answer within "
                               f"{timeout:g} s")
        try:
            return _loads(conn.recv_bytes())
        except (EOFError, ConnectionError, OSError):
            proc.join(1)
            raise RuntimeError(f"rank {rank} of the --world-size={self.world_size} group ended (exit code "
                               f"{proc.exitcode})") from None

    def run(self, component: str, shards: list[dict], config: dict, profile: str, dtype: torch.dtype,
            timeout: float | None) -> list[RankResult]:
        """Every rank runs the candidate on its shard; one :class:`RankResult` per rank, in rank order."""
        for conn, shard in zip(self._conns, shards, strict=True):
            conn.send_bytes(_dumps((component, shard, dict(config), profile, dtype, timeout)))
        wait = (timeout or 0) + GROUP_TIMEOUT + 30
        return [self._receive(rank, wait) for rank in range(self.world_size)]

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send_bytes(_dumps(None))
            except (BrokenPipeError, OSError):
                pass
        for proc in self._procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        for conn in self._conns:
            conn.close()
        shutil.rmtree(self._dir, ignore_errors=True)
