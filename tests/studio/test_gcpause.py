"""gc_paused: collection is off inside, back on after, even when pauses overlap in threads, and
left off when it was off before."""

from __future__ import annotations

import gc
import threading

from r1studio.core.gcpause import gc_paused


def test_it_pauses_and_restores_collection_across_overlapping_threads():
    assert gc.isenabled()
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with gc_paused():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=other)
    with gc_paused():
        assert not gc.isenabled()
        thread.start()
        inside.wait(5)
    assert not gc.isenabled()  # the other thread's pause still holds
    release.set()
    thread.join()
    assert gc.isenabled()


def test_it_leaves_collection_off_when_it_was_off():
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
