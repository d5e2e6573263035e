"""framewire: stream live video between machines, from Python.

Frames are numpy arrays, H×W×3 uint8 in BGR as OpenCV gives and takes them (RGB and grey
with ``color=``)::

    import framewire

    with framewire.Server("0.0.0.0:9999", codec="jpeg") as server:   # viewers connect
        server.send(frame)

    with framewire.Viewer("camera-host:9999") as viewer:              # connect to a server
        for frame, info in viewer:
            ...

    with framewire.Hub("0.0.0.0:9990") as hub:                        # senders push to it
        for name, frame, info in hub:
            ...

    with framewire.Sender("hub-host:9990", name="door") as sender:   # push to a hub
        sender.send(frame)

    with framewire.call(connect="peer:9998") as call:                 # a two-way call
        call.send(frame)
        their_frame, info = call.recv()

Each side keeps only the newest frame: a slow network or a slow program drops frames
(counted in ``dropped``), it never builds a backlog or blocks the sender. ``framewire.imagezmq``
is a drop-in for imagezmq's ``ImageSender`` and ``ImageHub``.
"""

from ._framewire import (
    Call,
    Error,
    FrameInfo,
    Hub,
    Sender,
    Server,
    Viewer,
    __version__,
    call,
    decode_jpeg,
    encode_jpeg,
)

__all__ = [
    "Call",
    "Error",
    "FrameInfo",
    "Hub",
    "Sender",
    "Server",
    "Viewer",
    "__version__",
    "call",
    "decode_jpeg",
    "encode_jpeg",
]
