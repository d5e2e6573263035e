"""Ctrl-C interrupts a blocking recv: a script blocked in a Viewer's, a Hub's or a call's recv
gets KeyboardInterrupt when SIGINT comes, and says how long after the signal it got it."""

import os
import signal
import subprocess
import sys
import time

import pytest

import framewire
from conftest import WAIT

BLOCKED = {
    "viewer": "framewire.Viewer(sys.argv[1])",
    "hub": "framewire.Hub('127.0.0.1:0')",
    "call": "framewire.call(listen='127.0.0.1:0', size=(64, 48))",
}

# Ctrl-C as a terminal's program gets it: a process a non-interactive shell started in the
# background (CI's) inherits SIGINT ignored, and Python then leaves it so.
SCRIPT = """
import signal, sys, time, framewire
signal.signal(signal.SIGINT, signal.default_int_handler)
receiver = {blocked}
print("ready", flush=True)
try:
    receiver.recv()
except KeyboardInterrupt:
    print("interrupted", time.monotonic(), flush=True)
"""


@pytest.mark.parametrize("what", sorted(BLOCKED))
def test_ctrl_c_interrupts_a_blocking_recv(what):
    # A server with no frames: a viewer of it blocks in recv.
    with framewire.Server("127.0.0.1:0", size=(64, 48)) as server:
        child = subprocess.Popen(
            [sys.executable, "-c", SCRIPT.format(blocked=BLOCKED[what]), server.address],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout.readline().strip() == "ready"
        # The child is in recv once it has waited a little; sent early, the signal is still
        # taken at recv's next wake.
        time.sleep(0.3)
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=WAIT)
    words = out.split()
    assert words[:1] == ["interrupted"], out
    after = float(words[1]) - sent
    # recv wakes every 50 ms for signals; the bound here leaves room for a loaded machine.
    assert after < 1.0, f"{what}: interrupted {after * 1e3:.0f} ms after SIGINT"
    print(f"{what}: KeyboardInterrupt {after * 1e3:.1f} ms after SIGINT")
