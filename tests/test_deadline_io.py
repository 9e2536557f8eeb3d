"""The deadline-bound socket reads and writes of services/deadline.py on real sockets, with `poll` (Linux, macOS)
and with the `select` fallback that Windows, which has no `poll`, uses. No wall time is asserted."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from xoromail_cli.services import deadline
from xoromail_cli.services.deadline import Deadline, DeadlineExceededError


@pytest.fixture(params=["poll", "select"])
def pair(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[socket.socket,
                                                                                            socket.socket]]:
    monkeypatch.setattr(deadline, "_HAS_POLL", request.param == "poll")
    ours, theirs = socket.socketpair()
    ours.settimeout(30)  # as a connected SMTP socket arrives: in timeout mode
    with ours, theirs:
        yield ours, theirs


def test_a_read_waits_for_data_that_comes_later(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    later = threading.Timer(0.05, lambda: theirs.sendall(b"250 OK\r\n"))
    later.start()
    try:
        assert deadline.recv(ours, Deadline(5, "the reply")) == b"250 OK\r\n"
    finally:
        later.cancel()


def test_a_read_of_silence_ends_at_its_deadline(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = pair
    with pytest.raises(DeadlineExceededError) as raised:
        deadline.recv(ours, Deadline(0.1, "the reply"), started=False)
    assert raised.value.what == "the reply" and raised.value.started is False


def test_a_read_of_a_closed_stream_returns_nothing(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    theirs.close()
    assert deadline.recv(ours, Deadline(5, "the reply")) == b""


def test_a_write_the_peer_reads_goes_out_whole(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    data = bytes(range(256)) * 8192  # 2 MiB: more than the socket buffers hold, so the writer has to wait
    received = bytearray()

    def read() -> None:
        while len(received) < len(data):
            chunk = theirs.recv(65536)
            if not chunk:
                return
            received.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    deadline.send_all(ours, data, Deadline(30, "sending"), timeout=30)
    reader.join(10)
    assert bytes(received) == data


def test_a_write_to_a_peer_that_stops_reading_fails_after_the_stall_timeout(
        pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = pair
    with pytest.raises(DeadlineExceededError) as raised:
        deadline.send_all(ours, b"x" * (16 << 20), Deadline(60, "sending 16 MiB"), timeout=0.2)
    assert raised.value.what == "sending 16 MiB"
    assert str(raised.value) == "sending 16 MiB stopped: the server took no data for 0.2 s"  # not "within 60 s"


def test_a_stalled_write_reports_what_went_out_and_never_the_last_byte(
        pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = pair
    data = b"x" * (16 << 20)
    counts: list[int] = []
    with pytest.raises(DeadlineExceededError):
        deadline.send_all(ours, data, Deadline(60, "sending"), timeout=0.2, on_sent=counts.append)
    assert counts and counts == sorted(counts) and 0 < counts[-1] < len(data)


def test_the_end_of_a_message_counts_as_written_even_when_the_commands_behind_it_stall(
        pair: tuple[socket.socket, socket.socket]) -> None:
    """A pipelined message's final dot shares a write with the next message's commands: once the socket has
    taken the dot the message may be accepted, whatever becomes of the rest of the write."""
    ours, _ = pair
    message, behind = b"Subject: x\r\n\r\nbody\r\n.\r\n", b"y" * (16 << 20)
    ends: list[str] = []
    with pytest.raises(DeadlineExceededError):
        deadline.send_all(ours, message + behind, Deadline(60, "sending"), timeout=0.2,
                          on_sent=deadline.Reached(len(message), lambda: ends.append("written")))
    assert ends == ["written"]


def test_a_message_whose_end_never_went_out_is_not_written(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = pair
    message = b"x" * (16 << 20) + b"\r\n.\r\n"
    ends: list[str] = []
    with pytest.raises(DeadlineExceededError):
        deadline.send_all(ours, message, Deadline(60, "sending"), timeout=0.2,
                          on_sent=deadline.Reached(len(message), lambda: ends.append("written")))
    assert ends == []
