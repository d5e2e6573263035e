"""Type stubs of framewire's native module (python/src in the framewire repository)."""

from types import TracebackType
from typing import Dict, Iterator, List, Literal, Optional, Tuple, Type, Union

import numpy as np
import numpy.typing as npt

__version__: str

Frame = npt.NDArray[np.uint8]
"""H×W×3 uint8 (BGR, or RGB with color="rgb"), or H×W for color="gray"."""

Color = Literal["bgr", "rgb", "gray", "grey"]
Codec = Literal["raw", "bincode", "jpeg", "h264"]
Token = Union[str, bytes, None]
ServerTls = Union[bool, Tuple[str, str], None]
"""True: the self-signed certificate kept in the config folder; (cert.pem, key.pem)."""
ClientTls = Union[bool, str, None]
"""True: trust on first use (known_hosts); "sha256:HEX": only that certificate; a CA's PEM path."""

class Error(Exception):
    """What framewire could not do, in one line."""

class FrameInfo:
    """What arrives with a frame."""

    @property
    def seq(self) -> int:
        """Its number in the sender's stream, from 0; gaps are frames this side did not get."""
    @property
    def capture_time(self) -> float:
        """When the sender captured it, in seconds since the Unix epoch."""
    @property
    def latency(self) -> float:
        """Seconds from capture to decoded here."""
    @property
    def codec(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def rung(self) -> Optional[int]:
        """Its rung on the sender's quality ladder, 0 the best."""
    @property
    def name(self) -> Optional[str]:
        """The sender's name, for a frame a hub received."""

class Server:
    """Viewers connect to it; send() returns at once, the newest frame wins."""

    def __init__(
        self,
        listen: str = "127.0.0.1:9999",
        *,
        codec: Codec = "jpeg",
        quality: int = 80,
        width: Optional[int] = None,
        fps: Optional[float] = None,
        bitrate: Optional[int] = None,
        adapt: bool = False,
        transport: Literal["tcp", "udp"] = "tcp",
        token: Token = None,
        tls: ServerTls = None,
        http: Optional[str] = None,
        size: Optional[Tuple[int, int]] = None,
        color: Color = "bgr",
        max_viewers: int = 64,
    ) -> None: ...
    def send(self, frame: Frame, wait: bool = False) -> None: ...
    @property
    def address(self) -> Optional[str]:
        """Where it listens; None before the first frame (without size=)."""
    @property
    def http_address(self) -> Optional[str]: ...
    @property
    def tls_fingerprint(self) -> Optional[str]: ...
    @property
    def viewers(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    @property
    def frames(self) -> int: ...
    def wait_for_viewer(self, timeout: Optional[float] = None) -> int: ...
    def close(self) -> None: ...
    def __enter__(self) -> "Server": ...
    def __exit__(
        self,
        t: Optional[Type[BaseException]],
        v: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

class Sender:
    """Pushes its frames to a Hub as `name`, dialing again whenever the hub goes away."""

    def __init__(
        self,
        connect: str = "127.0.0.1:9990",
        name: Optional[str] = None,
        *,
        codec: Codec = "jpeg",
        quality: int = 80,
        width: Optional[int] = None,
        fps: Optional[float] = None,
        bitrate: Optional[int] = None,
        token: Token = None,
        tls: ClientTls = None,
        size: Optional[Tuple[int, int]] = None,
        color: Color = "bgr",
    ) -> None: ...
    def send(self, frame: Frame, wait: bool = False) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def connected(self) -> bool: ...
    @property
    def last_error(self) -> Optional[str]: ...
    @property
    def dropped(self) -> int: ...
    @property
    def frames(self) -> int: ...
    def wait_connected(self, timeout: Optional[float] = None) -> bool: ...
    def close(self) -> None: ...
    def __enter__(self) -> "Sender": ...
    def __exit__(
        self,
        t: Optional[Type[BaseException]],
        v: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

class Viewer:
    """Connects to a server; iterate for (frame, info)."""

    def __init__(
        self,
        connect: str = "127.0.0.1:9999",
        *,
        codec: Optional[Codec] = None,
        width: Optional[int] = None,
        rung: Optional[int] = None,
        transport: Literal["tcp", "udp"] = "tcp",
        token: Token = None,
        tls: ClientTls = None,
        color: Color = "bgr",
        idle_timeout: float = 15.0,
        reconnect: bool = True,
        max_payload: int = 64 << 20,
    ) -> None: ...
    def recv(self, timeout: Optional[float] = None) -> Tuple[Frame, FrameInfo]: ...
    def __iter__(self) -> Iterator[Tuple[Frame, FrameInfo]]: ...
    def __next__(self) -> Tuple[Frame, FrameInfo]: ...
    @property
    def received(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    def close(self) -> None: ...
    def __enter__(self) -> "Viewer": ...
    def __exit__(
        self,
        t: Optional[Type[BaseException]],
        v: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

class Hub:
    """Senders push to it; iterate for (name, frame, info)."""

    def __init__(
        self,
        listen: str = "127.0.0.1:9990",
        *,
        token: Token = None,
        tls: ServerTls = None,
        color: Color = "bgr",
        max_senders: int = 64,
        idle_timeout: float = 15.0,
        max_payload: int = 64 << 20,
    ) -> None: ...
    def recv(self, timeout: Optional[float] = None) -> Tuple[str, Frame, FrameInfo]: ...
    def __iter__(self) -> Iterator[Tuple[str, Frame, FrameInfo]]: ...
    def __next__(self) -> Tuple[str, Frame, FrameInfo]: ...
    @property
    def address(self) -> str: ...
    @property
    def tls_fingerprint(self) -> Optional[str]: ...
    @property
    def senders(self) -> List[str]: ...
    @property
    def dropped(self) -> Dict[str, int]: ...
    def close(self) -> None: ...
    def __enter__(self) -> "Hub": ...
    def __exit__(
        self,
        t: Optional[Type[BaseException]],
        v: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

class Call:
    """A side of a two-way call, made by call()."""

    def send(self, frame: Frame, wait: bool = False) -> None: ...
    def recv(self, timeout: Optional[float] = None) -> Tuple[Frame, FrameInfo]: ...
    @property
    def address(self) -> Optional[str]: ...
    @property
    def dropped(self) -> int: ...
    def close(self) -> None: ...
    def __enter__(self) -> "Call": ...
    def __exit__(
        self,
        t: Optional[Type[BaseException]],
        v: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

def call(
    connect: Optional[str] = None,
    *,
    listen: Optional[str] = None,
    codec: Codec = "jpeg",
    quality: int = 80,
    width: Optional[int] = None,
    fps: Optional[float] = None,
    bitrate: Optional[int] = None,
    transport: Literal["tcp", "udp"] = "tcp",
    token: Token = None,
    tls: Union[ServerTls, ClientTls] = None,
    size: Optional[Tuple[int, int]] = None,
    color: Color = "bgr",
    idle_timeout: float = 15.0,
) -> Call: ...
def encode_jpeg(frame: Frame, quality: int = 90, color: Color = "bgr") -> bytes: ...
def decode_jpeg(data: bytes, color: Color = "bgr") -> Frame: ...
