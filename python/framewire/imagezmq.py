"""imagezmq's ``ImageSender`` and ``ImageHub`` on framewire: change one import and an
imagezmq program runs on framewire::

    # import imagezmq
    from framewire import imagezmq

    sender = imagezmq.ImageSender(connect_to="tcp://hub-host:5555")
    sender.send_image("rpi-1", frame)

    hub = imagezmq.ImageHub(open_port="tcp://*:5555")
    name, frame = hub.recv_image()
    hub.send_reply(b"OK")

What differs: the hub does not need to answer. ``send_image`` never waits for the hub's
"OK" (it returns ``b"OK"`` at once), so a hub that restarts or is slow never blocks a sender:
each sender's newest frame wins, and the sender dials again by itself. ``send_reply`` is
accepted and does nothing.

With ``REQ_REP=False`` (imagezmq's PUB/SUB), the sender listens and the hub connects to it,
as in imagezmq. Frames travel as raw arrays, as imagezmq sends them, so they arrive with
exactly the pixels sent; ``send_jpg`` sends JPEG (decoded and encoded again by framewire's
codec, at quality 95) and ``recv_jpg`` gives JPEG bytes encoded from the frame received.
A grey image arrives as H×W×3.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

from . import _framewire as _fw

__all__ = ["ImageHub", "ImageSender"]

# The JPEG quality of send_jpg's stream and of recv_jpg's bytes.
_JPEG_QUALITY = 95


def _address(url: str, listening: bool) -> str:
    """``tcp://host:port`` (imagezmq's form) as framewire's ``host:port``; ``*`` is every
    address."""
    rest = url.split("://", 1)[1] if "://" in url else url
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected tcp://HOST:PORT, got {url!r}")
    if host in ("*", ""):
        host = "0.0.0.0" if listening else "127.0.0.1"
    return f"{host}:{port}"


class ImageSender:
    """Sends images to an ``ImageHub`` (``REQ_REP=True``, imagezmq's default: this side
    connects), or to the hubs that connect to it (``REQ_REP=False``: this side listens).
    """

    def __init__(
        self,
        connect_to: str = "tcp://127.0.0.1:5555",
        REQ_REP: bool = True,
        *,
        token: Any = None,
        tls: Any = None,
    ) -> None:
        self._req_rep = REQ_REP
        self._address = _address(connect_to, listening=not REQ_REP)
        self._token = token
        self._tls = tls
        # One stream per name (and kind): imagezmq's msg is the sender's name.
        self._streams: Dict[Tuple[str, str], Any] = {}
        self._shapes: Dict[Tuple[str, str], Tuple[int, ...]] = {}

    def _stream(self, msg: str, kind: str, shape: Tuple[int, ...]) -> Any:
        key = (msg, kind)
        stream = self._streams.get(key)
        if stream is not None and self._shapes[key] == shape:
            return stream
        if stream is not None:
            stream.close()
        codec = "jpeg" if kind == "jpg" else "raw"
        color = "gray" if len(shape) == 2 else "bgr"
        if self._req_rep:
            stream = _fw.Sender(
                self._address,
                name=msg,
                codec=codec,
                quality=_JPEG_QUALITY,
                token=self._token,
                tls=self._tls,
                color=color,
            )
        else:
            stream = _fw.Server(
                self._address,
                codec=codec,
                quality=_JPEG_QUALITY,
                token=self._token,
                tls=self._tls,
                color=color,
            )
        self._streams[key] = stream
        self._shapes[key] = shape
        return stream

    def send_image(self, msg: str, image: np.ndarray) -> Optional[bytes]:
        """Sends ``image`` (uint8, H×W×3 BGR or H×W grey) as ``msg``; returns ``b"OK"`` at
        once with ``REQ_REP`` (the hub does not answer), else ``None``."""
        self._stream(str(msg), "image", image.shape).send(image)
        return b"OK" if self._req_rep else None

    def send_jpg(self, msg: str, jpg_buffer: Any) -> Optional[bytes]:
        """Sends the JPEG ``jpg_buffer`` (bytes, or a numpy array of them) as ``msg``."""
        data = bytes(memoryview(jpg_buffer).cast("B"))
        image = _fw.decode_jpeg(data)
        self._stream(str(msg), "jpg", image.shape).send(image)
        return b"OK" if self._req_rep else None

    def close(self) -> None:
        """Ends every stream this sender started."""
        for stream in self._streams.values():
            stream.close()
        self._streams.clear()

    def __enter__(self) -> "ImageSender":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ImageHub:
    """Receives images from ``ImageSender``s: they connect to it (``REQ_REP=True``, imagezmq's
    default), or it connects to one that listens (``REQ_REP=False``)."""

    def __init__(
        self,
        open_port: str = "tcp://*:5555",
        REQ_REP: bool = True,
        *,
        token: Any = None,
        tls: Any = None,
    ) -> None:
        self._req_rep = REQ_REP
        if REQ_REP:
            self._hub = _fw.Hub(_address(open_port, listening=True), token=token, tls=tls)
            self._viewer = None
        else:
            self._hub = None
            self._viewer = _fw.Viewer(
                _address(open_port, listening=False), token=token, tls=tls
            )

    def _recv(self) -> Tuple[str, np.ndarray]:
        if self._hub is not None:
            name, image, _info = self._hub.recv()
            return name, image
        assert self._viewer is not None
        image, _info = self._viewer.recv()
        return "", image

    def recv_image(self, copy: bool = False) -> Tuple[str, np.ndarray]:
        """The next image and its sender's name, waiting until one comes."""
        return self._recv()

    def recv_jpg(self, copy: bool = False) -> Tuple[str, bytes]:
        """The next image as JPEG bytes, and its sender's name."""
        name, image = self._recv()
        return name, _fw.encode_jpeg(image, quality=_JPEG_QUALITY)

    def send_reply(self, reply_message: bytes = b"OK") -> None:
        """Accepted for imagezmq's programs, and nothing more: senders never wait for it."""

    def close(self) -> None:
        """Stops receiving."""
        if self._hub is not None:
            self._hub.close()
        if self._viewer is not None:
            self._viewer.close()

    def __enter__(self) -> "ImageHub":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
