from __future__ import annotations

import socket
from pathlib import Path

from s3worker.systemd import Notifier


def test_messages_reach_the_notify_socket(tmp_path: Path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "n.sock"))
    sock.settimeout(5)
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "n.sock"), "WATCHDOG_USEC": "30000000"})
    notifier.ready("polling")
    notifier.watchdog()
    notifier.stopping("draining")
    assert sock.recv(1024).decode().splitlines()[:2] == ["READY=1", "STATUS=polling"]
    assert sock.recv(1024) == b"WATCHDOG=1"
    assert sock.recv(1024).decode().splitlines() == ["STOPPING=1", "STATUS=draining"]
    assert notifier.watchdog_seconds == 30


def test_without_systemd_it_is_silent():
    notifier = Notifier({})
    assert not notifier.enabled
    notifier.ready("x")  # no socket: nothing happens, nothing raises
    assert notifier.watchdog_seconds is None


def test_watchdog_for_another_pid_is_ignored():
    assert Notifier({"WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}).watchdog_seconds is None


def test_a_vanished_socket_is_reported_not_raised(tmp_path: Path):
    # Given a notify socket that is gone (the manager closed it)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "n.sock"))
    sock.close()
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "n.sock")})
    # When the daemon notifies while draining, Then it carries on
    assert notifier.stopping("draining") is False


def test_watchdog_pings_only_after_a_recent_turn(tmp_path: Path):
    from s3worker.systemd import Watchdog

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "n.sock"))
    sock.settimeout(5)
    now = [100.0]
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "n.sock"), "WATCHDOG_USEC": "10000000"})
    watchdog = Watchdog(notifier, clock=lambda: now[0])
    # Given a loop that turned 9 s ago (within the 10 s period): a ping
    now[0] += 9
    assert watchdog.ping() is True
    assert sock.recv(1024) == b"WATCHDOG=1"
    # When it has not turned for 10 s: no ping, and STATUS says why
    now[0] += 1
    assert watchdog.ping() is False
    assert sock.recv(1024) == b"STATUS=main loop stalled for 10 s: watchdog withheld"
    # Then a turn brings the pings back
    watchdog.turn()
    assert watchdog.ping() is True
    assert sock.recv(1024) == b"WATCHDOG=1"
    sock.close()
