"""The lab's queue service: pythagoras on a reported port, stopped with the lab."""

from __future__ import annotations

from pathlib import Path

import pytest
import zmq

from wirelab.errors import Timeout
from wirelab.lab.service import LabContext
from wirelab.lab.supervisor import LabThread
from wirelab.queue.pipeline import run_pi
from wirelab.queue.pythagoras import ask_pythagoras
from wirelab.queue.service import QueueService
from wirelab.queue.sockets import tcp_endpoint

Context = zmq.Context[zmq.Socket[bytes]]


def test_lab_pythagoras_serves_the_pipeline(tmp_path: Path, context: Context) -> None:
    with LabThread([QueueService()], LabContext(state_dir=tmp_path, ephemeral=True)) as state:
        ep = state.endpoint("queue", "rep")
        assert (ep.name, ep.host, ep.protocol) == ("queue.rep", "queue.example.com", "tcp")
        where = tcp_endpoint(ep.address, ep.port)
        assert ask_pythagoras(context, where, [(6, 8)]) == [100]
        result = run_pi(2000, pythagoras=[where], seed=2)
        assert sum(result.published.values()) == result.tallied == 2000
    with pytest.raises(Timeout):  # stopped with the lab
        ask_pythagoras(context, where, [(6, 8)], timeout=0.3)
