"""RunTimesHook splits a kedro run's time into nodes, dataset I/O and the rest."""

from __future__ import annotations

import logging

import pytest
from kedro.pipeline import node

from ssformer_repro import hooks
from ssformer_repro.hooks import RunTimesHook


def train_run(x):
    return x


def tabulate(x):
    return x


def test_run_times_split_nodes_dataset_io_and_the_rest(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    now = [100.0]
    monkeypatch.setattr(hooks.time, "perf_counter", lambda: now[0])
    train = node(train_run, "a", "b", name="kvasir.mit_b0.sed.train")
    table = node(tabulate, "b", "c", name="tabulate")
    times = RunTimesHook()

    def advance(seconds: float) -> None:
        now[0] += seconds

    times.before_pipeline_run()
    advance(1.0)  # runner bookkeeping
    times.before_dataset_loaded("a")
    advance(2.0)
    times.after_dataset_loaded("a")
    times.before_node_run(train)
    advance(30.0)
    times.after_node_run(train)
    times.before_dataset_saved("b")
    advance(0.5)
    times.after_dataset_saved("b")
    times.before_node_run(table)
    advance(4.0)
    times.after_node_run(table)
    advance(0.5)

    summary = times.summary()
    assert summary["pipeline_seconds"] == 38.0
    assert summary["node_seconds"] == {"kvasir.mit_b0.sed.train": 30.0, "tabulate": 4.0}
    assert summary["nodes_seconds"] == 34.0 and summary["dataset_seconds"] == 2.5
    assert summary["other_seconds"] == 1.5
    with caplog.at_level(logging.INFO, logger="ssformer_repro.hooks"):
        times.after_pipeline_run()
    assert "nodes 34.0 s (train_run 30.0 s, tabulate 4.0 s)" in caplog.text

    times.before_pipeline_run()  # a second run in the same process starts afresh
    assert times.summary()["node_seconds"] == {}
