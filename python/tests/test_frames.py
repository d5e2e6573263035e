"""Frames in and out: exact pixels through the raw codec in BGR, RGB and grey, JPEG within
a PSNR bound, OpenCV's frames, a two-way call, and the errors a wrong frame or argument gets."""

import numpy as np
import pytest

import framewire
from conftest import camera_like, need, pattern, psnr, recv_while_sending, until


@pytest.mark.parametrize("color", ["bgr", "rgb"])
def test_raw_frames_arrive_with_exactly_the_pixels_sent(color):
    frame = pattern()
    with framewire.Server("127.0.0.1:0", codec="raw", color=color, size=(64, 48)) as server:
        with framewire.Viewer(server.address, color=color) as viewer:
            got, info = recv_while_sending(viewer, lambda: server.send(frame))
    assert got.shape == (48, 64, 3) and got.dtype == np.uint8
    assert np.array_equal(got, frame)
    assert (info.codec, info.width, info.height, info.rung) == ("raw", 64, 48, 0)
    assert info.latency >= 0 and info.capture_time > 1.6e9


def test_bgr_sent_is_rgb_received_when_asked():
    frame = pattern()
    with framewire.Server("127.0.0.1:0", codec="raw", size=(64, 48)) as server:
        with framewire.Viewer(server.address, color="rgb") as viewer:
            got, _ = recv_while_sending(viewer, lambda: server.send(frame))
    assert np.array_equal(got, frame[..., ::-1])


def test_bgr_sent_is_luma_received_when_grey_is_asked():
    frame = pattern()
    with framewire.Server("127.0.0.1:0", codec="raw", size=(64, 48)) as server:
        with framewire.Viewer(server.address, color="gray") as viewer:
            got, _ = recv_while_sending(viewer, lambda: server.send(frame))
    # BT.601 luma, as cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) rounds it.
    b, g, r = (frame[..., i].astype(np.uint32) for i in range(3))
    luma = ((77 * r + 150 * g + 29 * b + 128) >> 8).astype(np.uint8)
    assert got.shape == (48, 64)
    assert np.array_equal(got, luma)


def test_grey_frames_go_and_come_as_height_by_width():
    grey = pattern()[..., 0].copy()
    with framewire.Server("127.0.0.1:0", codec="raw", color="gray", size=(64, 48)) as server:
        with framewire.Viewer(server.address, color="gray") as viewer:
            got, _ = recv_while_sending(viewer, lambda: server.send(grey))
    assert got.shape == (48, 64)
    assert np.array_equal(got, grey)


def test_a_slice_of_a_larger_array_is_sent_as_its_pixels():
    big = pattern(96, 128)
    part = big[10:58, 20:84]
    assert not part.flags["C_CONTIGUOUS"]
    with framewire.Server("127.0.0.1:0", codec="raw", size=(64, 48)) as server:
        with framewire.Viewer(server.address) as viewer:
            got, _ = recv_while_sending(viewer, lambda: server.send(part))
    assert np.array_equal(got, part)


@pytest.mark.parametrize("quality,bound", [(80, 38.0), (95, 40.0)])
def test_jpeg_frames_arrive_within_a_psnr_bound(quality, bound):
    frame = camera_like()
    with framewire.Server("127.0.0.1:0", codec="jpeg", quality=quality) as server:
        server.send(frame)
        with framewire.Viewer(server.address) as viewer:
            got, info = recv_while_sending(viewer, lambda: server.send(frame))
    assert info.codec == "jpeg" and got.shape == frame.shape
    assert psnr(got, frame) > bound, psnr(got, frame)


def test_opencv_frames_in_and_out():
    try:
        import cv2
    except ImportError:
        need(False, "opencv-python-headless is not installed")
    frame = np.zeros((240, 320, 3), np.uint8)
    cv2.rectangle(frame, (40, 30), (200, 150), (255, 0, 0), -1)  # blue in BGR
    cv2.circle(frame, (240, 160), 50, (0, 0, 255), -1)  # red in BGR
    cv2.putText(frame, "framewire", (20, 220), cv2.FONT_HERSHEY_SIMPLEX, 1, (0, 255, 0), 2)
    with framewire.Server("127.0.0.1:0", codec="jpeg", quality=90) as server:
        server.send(frame)
        with framewire.Viewer(server.address) as viewer:
            got, _ = recv_while_sending(viewer, lambda: server.send(frame))
    # OpenCV reads what arrived as its own BGR image.
    assert cv2.PSNR(frame, got) > 30
    b, g, r = got[90, 120]
    assert b > 200 and g < 60 and r < 60, "blue stays blue"
    ok, png = cv2.imencode(".png", got)
    assert ok and np.array_equal(cv2.imdecode(png, cv2.IMREAD_COLOR), got)
    # And framewire's JPEG helpers agree with OpenCV's.
    decoded = cv2.imdecode(np.frombuffer(framewire.encode_jpeg(frame, 90), np.uint8), 1)
    assert cv2.PSNR(frame, decoded) > 30
    ok, jpg = cv2.imencode(".jpg", frame)
    assert cv2.PSNR(framewire.decode_jpeg(jpg.tobytes()), frame) > 30


def test_a_two_way_call_carries_each_sides_frames():
    a_frame, b_frame = pattern(seed=1), pattern(seed=2)
    with framewire.call(listen="127.0.0.1:0", codec="raw", size=(64, 48)) as a:
        with framewire.call(connect=a.address, codec="raw", size=(64, 48)) as b:
            got_b, _ = recv_while_sending(b, lambda: (a.send(a_frame), b.send(b_frame)))
            got_a, _ = recv_while_sending(a, lambda: (a.send(a_frame), b.send(b_frame)))
    assert np.array_equal(got_b, a_frame)
    assert np.array_equal(got_a, b_frame)


def test_wrong_frames_and_arguments_are_refused_in_one_line():
    with framewire.Server("127.0.0.1:0", codec="raw", size=(64, 48)) as server:
        with pytest.raises(ValueError, match=r"uint8"):
            server.send(np.zeros((48, 64, 3), np.float32))
        with pytest.raises(ValueError, match=r"shape \(height, width, 3\)"):
            server.send(np.zeros((48, 64, 4), np.uint8))
        with pytest.raises(ValueError, match=r"32x48; this stream is 64x48"):
            server.send(np.zeros((48, 32, 3), np.uint8))
        with pytest.raises(ValueError, match="expected a numpy array"):
            server.send([1, 2, 3])
    with pytest.raises(framewire.Error, match="closed"):
        server.send(pattern())
    with pytest.raises(ValueError, match="codec: unknown codec \"vp9\""):
        framewire.Server("127.0.0.1:0", codec="vp9")
    with pytest.raises(ValueError, match="quality: expected 1..=100"):
        framewire.Server("127.0.0.1:0", quality=0)
    with pytest.raises(ValueError, match="color"):
        framewire.Viewer("127.0.0.1:1", color="hsv")
    with pytest.raises(ValueError, match="connect: "):
        framewire.Viewer("no-such-host.invalid:9999")
    with pytest.raises(ValueError, match="token: .* at least 16"):
        framewire.Server("127.0.0.1:0", token="short")


def test_a_viewer_of_nobody_says_so():
    with framewire.Viewer("127.0.0.1:1", reconnect=False) as viewer:
        with pytest.raises(framewire.Error, match="127.0.0.1:1"):
            viewer.recv(timeout=5)


def test_a_stream_the_server_ends_ends_the_for_loop():
    frame = pattern()
    server = framewire.Server("127.0.0.1:0", codec="raw", size=(64, 48))
    viewer = framewire.Viewer(server.address)
    recv_while_sending(viewer, lambda: server.send(frame))
    server.close()
    left = [f for f, _ in viewer]  # ends at the goodbye, without an error
    assert len(left) <= 2
    with pytest.raises(framewire.Error, match="ended the stream"):
        viewer.recv(timeout=1)
    viewer.close()


def test_send_with_wait_never_blocks_without_a_viewer_and_waits_for_one():
    frame = pattern()
    with framewire.Server("127.0.0.1:0", codec="raw", size=(64, 48)) as server:
        for _ in range(50):  # nobody watches: each returns at once, the newest wins
            server.send(frame, wait=True)
        assert server.frames == 50 and server.dropped >= 48
        with framewire.Viewer(server.address) as viewer:
            recv_while_sending(viewer, lambda: server.send(frame))
            for i in range(100):
                marked = frame.copy()
                marked[0, 0, 0] = i
                server.send(marked, wait=True)
            last = recv_while_sending(viewer, lambda: None)
            while last[0][0, 0, 0] != 99:
                last = viewer.recv(timeout=20)


def test_a_server_with_http_serves_browsers_its_frames_as_jpeg():
    import urllib.request

    frame = camera_like()
    with framewire.Server("127.0.0.1:0", codec="raw", http="127.0.0.1:0", size=(320, 240)) as s:
        assert s.http_address.startswith("http://127.0.0.1:")

        def snapshot():
            s.send(frame)
            try:
                with urllib.request.urlopen(s.http_address + "snapshot", timeout=5) as r:
                    return r.headers["Content-Type"], r.read()
            except OSError:
                return None

        kind, body = until(snapshot, "a snapshot from the server's HTTP")
    assert kind == "image/jpeg"
    assert psnr(framewire.decode_jpeg(body), frame) > 30
