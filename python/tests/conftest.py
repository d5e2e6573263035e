"""What the tests share: the framewire binary, frames to send, waits that poll a condition
(never a fixed sleep), and skips that fail under FRAMEWIRE_REQUIRE_ALL=1."""

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

import framewire

ROOT = Path(__file__).resolve().parents[2]
WAIT = 20.0


def need(condition: bool, reason: str) -> None:
    """Skips with `reason` unless `condition`; fails instead under FRAMEWIRE_REQUIRE_ALL=1."""
    if condition:
        return
    if os.environ.get("FRAMEWIRE_REQUIRE_ALL") == "1":
        pytest.fail(f"{reason} (FRAMEWIRE_REQUIRE_ALL=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def framewire_bin() -> str:
    """The framewire binary cargo built: $FRAMEWIRE_BIN, else target/debug/framewire."""
    path = os.environ.get("FRAMEWIRE_BIN") or str(ROOT / "target" / "debug" / "framewire")
    need(Path(path).exists(), f"no framewire binary at {path} (cargo build first)")
    return path


def pattern(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """A frame whose every pixel differs, so a swapped channel or row shows."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def camera_like(height: int = 240, width: int = 320, shift: int = 0) -> np.ndarray:
    """A smooth picture with soft edges and a little noise, as a camera sees (JPEG's kind of
    image); `shift` moves it."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    blob = np.exp(-(((x - width / 2 - shift) ** 2 + (y - height / 2) ** 2) / (width * 6.0)))
    frame = np.empty((height, width, 3), np.float64)
    frame[..., 0] = 60 + 120 * (x + shift) / width + 60 * blob
    frame[..., 1] = 40 + 150 * y / height
    frame[..., 2] = 90 + 140 * blob
    frame += np.random.default_rng(shift).normal(0, 2, frame.shape)
    return np.clip(frame, 0, 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    err = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if err == 0 else 10 * np.log10(255**2 / err)


def until(condition, what: str, timeout: float = WAIT):
    """Polls `condition` until it gives something true; fails naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = condition()
        if got:
            return got
        time.sleep(0.01)
    pytest.fail(f"{what}: not within {timeout} s")


def recv_while_sending(receiver, send, timeout: float = WAIT):
    """Sends (calling `send`) until `receiver.recv` gives a frame; returns what it gave."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        send()
        try:
            return receiver.recv(timeout=0.05)
        except TimeoutError:
            continue
    pytest.fail(f"no frame within {timeout} s")


def start(args, **kw) -> subprocess.Popen:
    """Starts the framewire binary with `args`, its output read line by line."""
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw
    )


def send_until_exit(proc: subprocess.Popen, send) -> tuple:
    """Calls `send()` about 30 times a second until `proc` exits; its (stdout, stderr)."""
    while proc.poll() is None:
        send()
        try:
            proc.wait(timeout=1 / 30)
        except subprocess.TimeoutExpired:
            pass
    return proc.communicate(timeout=WAIT)


def line_with(proc: subprocess.Popen, prefix: str) -> str:
    """The first stdout line of `proc` that starts with `prefix`."""
    for line in proc.stdout:
        if line.startswith(prefix):
            return line.strip()
    pytest.fail(f"{proc.args[1]} printed no line starting {prefix!r}: {proc.stderr.read()}")


@pytest.fixture
def hub():
    with framewire.Hub("127.0.0.1:0") as h:
        yield h
