"""Threads are decided in one place: what is asked for, else $OMP_NUM_THREADS, else the cores
the machine can give (usable cores less the load average); asking for more warns with the fix."""
import pytest

from crnn_ocr.utils import runtime


@pytest.fixture
def machine(monkeypatch):
    """A 4-core machine with 3 cores busy, no $OMP_NUM_THREADS."""
    monkeypatch.setattr(runtime, "usable_cores", lambda: 4)
    monkeypatch.setattr(runtime, "busy_cores", lambda: 3.2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


def test_the_default_takes_the_free_cores(machine, monkeypatch):
    assert runtime.free_cores() == 1 and runtime.thread_count() == 1
    monkeypatch.setattr(runtime, "busy_cores", lambda: 0.4)
    assert runtime.thread_count() == 4
    monkeypatch.setattr(runtime, "busy_cores", lambda: 9.0)  # an overloaded machine still gets one
    assert runtime.thread_count() == 1


def test_omp_num_threads_is_the_default_when_set(machine, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert runtime.thread_count() == 2  # not warned about: the user's (or the launcher's) choice
    with pytest.warns(RuntimeWarning):
        assert runtime.thread_count(3) == 3


def test_more_threads_than_free_cores_warn_with_the_fix(machine):
    with pytest.warns(RuntimeWarning, match=r"4 threads on a machine with 1 free core .*use --threads 1"):
        assert runtime.thread_count(4) == 4
    assert runtime.crowded(1) == ""


def test_use_threads_sets_pytorchs_threads_when_it_is_loaded(machine):
    import torch

    before = torch.get_num_threads()
    try:
        assert runtime.use_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
