"""Progress in a log file: steady lines with done/total, rate and ETA, and a final line."""

import logging

from mersemi.progress import LogProgress, progress


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "mersemi.progress"]


def test_lines_at_each_interval_and_at_the_end(caplog):
    with caplog.at_level(logging.INFO):
        bar = LogProgress(total=4, desc="faces", unit="clip", interval=0.0)
        for _ in range(3):
            bar.update(1)
        bar.close()
        bar.close()  # once only
    got = lines(caplog)
    assert got[0].startswith("faces: 1/4 clips (25%), ") and "clips/s, ETA 0:00:" in got[0]
    assert got[2].startswith("faces: 3/4 clips (75%)")
    assert got[3].startswith("faces: 3/4 clips (75%)") and "done in 0:00:00" in got[3]
    assert len(got) == 4


def test_the_last_item_gives_one_line_not_two(caplog):
    """A slow last clip crosses the interval: only the final 'done in' line is logged."""
    with caplog.at_level(logging.INFO):
        for _ in LogProgress(range(2), desc="faces", unit="clip", interval=0.0):
            pass
    got = lines(caplog)
    assert len(got) == 2 and got[0].startswith("faces: 1/2") and "done in" in got[1]


def test_a_loop_that_stops_early_still_ends_with_a_line(caplog, monkeypatch):
    """Early stopping breaks out of the epoch loop: the last line still comes, with the
    postfix the loop set (loss, validation WAF)."""
    monkeypatch.setenv("MERSEMI_PROGRESS_INTERVAL", "3600")  # no line but the final one
    monkeypatch.delenv("MERSEMI_NO_PROGRESS", raising=False)
    with caplog.at_level(logging.INFO):
        bar = progress(range(40), desc="fold 0", unit="epoch")
        assert isinstance(bar, LogProgress)  # pytest's stderr is not a terminal
        for epoch in bar:
            bar.set_postfix(loss="0.512", waf="0.7731")
            if epoch == 6:
                break
    assert lines(caplog) == [lines(caplog)[0]]
    assert lines(caplog)[0].startswith("fold 0: 7/40 epochs (18%)")
    assert lines(caplog)[0].endswith("loss 0.512, waf 0.7731")


def test_no_progress_turns_it_off(caplog, monkeypatch):
    monkeypatch.setenv("MERSEMI_NO_PROGRESS", "1")
    with caplog.at_level(logging.INFO):
        for _ in progress(range(3), desc="text"):
            pass
    assert lines(caplog) == []
