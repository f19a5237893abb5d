import io

from tinyvla.progress import progress_interval


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_refresh_live_on_a_terminal_and_rarely_in_a_log_file(monkeypatch):
    monkeypatch.setattr("sys.stderr", _Terminal())
    assert progress_interval() <= 0.5
    monkeypatch.setattr("sys.stderr", io.StringIO())  # a file: isatty() is False
    assert progress_interval() >= 10
