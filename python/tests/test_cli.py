"""framewire for Python beside the framewire command: a Python server watched by `framewire
view`, `framewire serve` watched by a Python viewer, `serve --push` to a Python hub, and a
Python sender to `framewire hub`."""

import itertools
import json

import numpy as np

import framewire
from conftest import WAIT, camera_like, line_with, need, send_until_exit, start


def test_a_python_server_is_watched_by_framewire_view(framewire_bin):
    with framewire.Server("127.0.0.1:0", codec="jpeg", size=(320, 240)) as server:
        view = start(
            [framewire_bin, "view", "--connect", server.address, "--headless",
             "--frames", "30", "--stats", "json", "--no-reconnect"]
        )
        shifts = itertools.count()
        out, err = send_until_exit(view, lambda: server.send(camera_like(shift=next(shifts))))
    assert view.returncode == 0, err
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["frames"] == 30
    assert (stats["codec"], stats["width"], stats["height"]) == ("jpeg", 320, 240)


def test_a_python_bgr_stream_keeps_its_colours_in_framewire_views_snapshot(
    framewire_bin, tmp_path
):
    try:
        import cv2
    except ImportError:
        need(False, "opencv-python-headless is not installed")
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, :32] = (0, 0, 255)  # red in BGR
    frame[:, 32:] = (255, 128, 0)  # blue with some green
    snapshot = tmp_path / "last.png"
    with framewire.Server("127.0.0.1:0", codec="raw", size=(64, 48)) as server:
        view = start(
            [framewire_bin, "view", "--connect", server.address, "--headless",
             "--frames", "5", "--snapshot", str(snapshot), "--no-reconnect"]
        )
        _, err = send_until_exit(view, lambda: server.send(frame))
    assert view.returncode == 0, err
    # The PNG holds RGB(A); OpenCV reads it back as BGR: the frame sent.
    assert np.array_equal(cv2.imread(str(snapshot), cv2.IMREAD_COLOR), frame)


def test_framewire_serve_is_watched_by_a_python_viewer(framewire_bin):
    serve = start(
        [framewire_bin, "serve", "--listen", "127.0.0.1:0", "--codec", "jpeg",
         "--size", "320x240"]
    )
    try:
        address = line_with(serve, "listening on ").split()[-1]
        with framewire.Viewer(address) as viewer:
            seqs = []
            for frame, info in viewer:
                assert frame.shape == (240, 320, 3) and info.codec == "jpeg"
                seqs.append(info.seq)
                if len(seqs) == 20:
                    break
        assert seqs == sorted(seqs) and len(set(seqs)) == 20
    finally:
        serve.kill()
        serve.wait()


def test_framewire_serve_pushes_to_a_python_hub(framewire_bin, hub):
    serve = start(
        [framewire_bin, "serve", "--listen", "127.0.0.1:0", "--push", hub.address,
         "--name", "cli-cam", "--codec", "raw", "--size", "64x48"]
    )
    try:
        name, frame, info = hub.recv(timeout=WAIT)
        assert name == "cli-cam" and frame.shape == (48, 64, 3) and info.codec == "raw"
    finally:
        serve.kill()
        serve.wait()


def test_a_python_sender_pushes_to_framewire_hub(framewire_bin):
    hub = start(
        [framewire_bin, "hub", "--listen", "127.0.0.1:0", "--frames", "10", "--stats", "json"]
    )
    address = line_with(hub, "listening on ").split()[-1]
    frame = np.full((48, 64, 3), 99, np.uint8)
    with framewire.Sender(address, name="py-cam", codec="raw") as sender:
        out, err = send_until_exit(hub, lambda: sender.send(frame))
    assert hub.returncode == 0, err
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["frames"] >= 10
    assert stats["senders"]["py-cam"]["codec"] == "raw"
    assert "py-cam joined" in out
