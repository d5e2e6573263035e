"""framewire.imagezmq: an imagezmq program that changes only its import: send_image and
recv_image with exact pixels, send_jpg and recv_jpg, PUB/SUB's direction, and a sender that
is never blocked by a hub that does not answer."""

import numpy as np

from framewire import imagezmq
from conftest import camera_like, pattern, psnr, until


def test_send_image_and_recv_image_as_imagezmq_programs_call_them():
    hub = imagezmq.ImageHub(open_port="tcp://127.0.0.1:0")
    port = hub._hub.address.rsplit(":", 1)[1]
    sender = imagezmq.ImageSender(connect_to=f"tcp://127.0.0.1:{port}")
    frame = pattern()
    got = {}

    def exchange():
        assert sender.send_image("rpi-1", frame) == b"OK"
        name, image = hub.recv_image()
        hub.send_reply(b"OK")
        got[name] = image
        return True

    until(exchange, "an image at the hub")
    assert np.array_equal(got["rpi-1"], frame)
    sender.close()
    hub.close()


def test_send_jpg_and_recv_jpg():
    from framewire import decode_jpeg, encode_jpeg

    with imagezmq.ImageHub(open_port="tcp://127.0.0.1:0") as hub:
        port = hub._hub.address.rsplit(":", 1)[1]
        frame = camera_like()
        with imagezmq.ImageSender(connect_to=f"tcp://localhost:{port}") as sender:
            sender.send_jpg("cam", encode_jpeg(frame, 95))
            name, jpg = hub.recv_jpg()
        assert name == "cam" and jpg[:2] == b"\xff\xd8"
        assert psnr(decode_jpeg(jpg), frame) > 36


def test_pub_sub_has_the_sender_listen_and_the_hub_connect():
    sender = imagezmq.ImageSender(connect_to="tcp://127.0.0.1:0", REQ_REP=False)
    frame = pattern()
    assert sender.send_image("pub", frame) is None
    server = next(iter(sender._streams.values()))
    hub = imagezmq.ImageHub(open_port=f"tcp://{server.address}", REQ_REP=False)
    _, image = until(
        lambda: sender.send_image("pub", frame) or hub.recv_image(), "an image"
    )
    assert np.array_equal(image, frame)
    hub.close()
    sender.close()


def test_a_sender_whose_hub_is_gone_never_blocks():
    # No hub at all: imagezmq's REQ/REP would block in send_image waiting for "OK".
    sender = imagezmq.ImageSender(connect_to="tcp://127.0.0.1:1")
    for _ in range(100):
        assert sender.send_image("lonely", pattern()) == b"OK"
    sender.close()
