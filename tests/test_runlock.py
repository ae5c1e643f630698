"""One workflow per results folder: the lock a workflow's main process holds."""

import os

from mersemi.runlock import LOCK_NAME, claim


def test_a_second_claim_is_refused_and_names_the_holder(tmp_path):
    first = claim(tmp_path / "results")
    assert first.held and (tmp_path / "results" / LOCK_NAME).is_file()
    second = claim(tmp_path / "results")  # another open file: flock refuses it
    assert not second.held and f"pid {os.getpid()}" in second.holder
    message = second.refusal()
    assert str(tmp_path / "results" / LOCK_NAME) in message and "in use" in message
    first.file.close()  # the holder ends: the lock is free again
    assert claim(tmp_path / "results").held
