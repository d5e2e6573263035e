"""framewire for Python against imagezmq, in one run, on the same numpy frames.

Each case runs a sender and a receiver in two processes (as a camera and its hub are), over
loopback:

- raw arrays sent as fast as possible: frames per second the receiver takes (framewire:
  Sender -> Hub, raw codec; imagezmq: ImageSender.send_image -> ImageHub.recv_image with its
  "OK" reply, REQ/REP);
- JPEG at quality 80 as fast as possible (framewire: codec="jpeg"; imagezmq: simplejpeg's
  libjpeg-turbo encode before send_jpg and decode after recv_jpg);
- raw at 30 fps: capture-to-received latency, p50 and p99 (the sender stamps each frame as
  it hands it over: framewire's info.capture_time, imagezmq's in the message);
- a hub restarted mid-stream (raw, 30 fps): whether frames reach the new hub, and how soon;
- the ceiling both meet: a plain socket moving each frame's bytes (one sendall, recv_into
  until whole) between two processes, frames per second.

The raw cases run three rounds, alternating the contenders: each rate is the median of its
three, each latency pooled over two runs. Prints one JSON object: {"<case>": {...}} with fps,
latency and restart figures per size.
"""

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time

import numpy as np

SIZES = [(640, 480), (1280, 720)]


def frames_for(width, height, n=8):
    """A few camera-like frames (smooth, with noise), cycled by the sender."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:height, 0:width]
    out = []
    for i in range(n):
        f = np.empty((height, width, 3), np.uint8)
        f[..., 0] = (x * 255 // width + 8 * i) % 256
        f[..., 1] = (y * 255 // height) % 256
        f[..., 2] = ((x + y + 4 * i) // 4) % 256
        f = np.clip(f.astype(np.int16) + rng.integers(-3, 4, f.shape), 0, 255).astype(np.uint8)
        out.append(f)
    return out


# --- senders -----------------------------------------------------------------------------


def send_framewire(address, size, codec, fps, seconds, ready):
    import framewire

    frames = frames_for(*size)
    with framewire.Sender(address, name="bench", codec=codec, quality=80) as sender:
        sender.send(frames[0])
        sender.wait_connected(timeout=20)
        ready.set()
        end = time.monotonic() + seconds
        i = 0
        next_at = time.monotonic()
        while time.monotonic() < end:
            # As fast as possible is as fast as frames go out: wait=True hands the next frame
            # in once the one before is on its way (none converted only to be dropped).
            sender.send(frames[i % len(frames)], wait=not fps)
            i += 1
            if fps:
                next_at += 1 / fps
                time.sleep(max(0.0, next_at - time.monotonic()))


def send_imagezmq(address, size, codec, fps, seconds, ready):
    import imagezmq
    import simplejpeg

    frames = frames_for(*size)
    sender = imagezmq.ImageSender(connect_to=f"tcp://{address}")
    ready.set()
    end = time.monotonic() + seconds
    i = 0
    next_at = time.monotonic()
    while time.monotonic() < end:
        frame = frames[i % len(frames)]
        stamp = f"{time.time():.6f}"
        if codec == "jpeg":
            jpg = simplejpeg.encode_jpeg(frame, quality=80, colorspace="BGR")
            sender.send_jpg(stamp, jpg)
        else:
            sender.send_image(stamp, frame)
        i += 1
        if fps:
            next_at += 1 / fps
            time.sleep(max(0.0, next_at - time.monotonic()))


# --- receivers ---------------------------------------------------------------------------


class Window:
    """The frames a receiver counts: those arriving from `warmup` seconds after the first
    one, for `seconds`."""

    def __init__(self, seconds, warmup):
        self.seconds, self.warmup = seconds, warmup
        self.start, self.count = None, 0

    def arrived(self):
        """A frame arrived: whether it counts, or None once the window is over."""
        now = time.monotonic()
        if self.start is None:
            self.start = now
        elapsed = now - self.start
        if elapsed > self.warmup + self.seconds:
            return None
        if elapsed > self.warmup:
            self.count += 1
            return True
        return False

    def rate(self):
        return self.count / self.seconds


def receive_framewire(address, seconds, results, warmup):
    import framewire

    latencies, window = [], Window(seconds, warmup)
    with framewire.Hub(address) as hub:
        results.put(("bound", hub.address))
        while True:
            try:
                _, frame, info = hub.recv(timeout=10)
            except TimeoutError:
                break
            now = time.time()
            counts = window.arrived()
            if counts is None:
                break
            if counts:
                latencies.append(now - info.capture_time)
    results.put(("done", window.rate(), latencies))


def receive_imagezmq(address, seconds, results, warmup, codec):
    import imagezmq
    import simplejpeg

    hub = imagezmq.ImageHub(open_port=f"tcp://{address}")
    results.put(("bound", address))
    latencies, window = [], Window(seconds, warmup)
    while True:
        if codec == "jpeg":
            stamp, jpg = hub.recv_jpg()
            frame = simplejpeg.decode_jpeg(jpg, colorspace="BGR")
        else:
            stamp, frame = hub.recv_image()
        hub.send_reply(b"OK")
        now = time.time()
        counts = window.arrived()
        if counts is None:
            break
        if counts:
            latencies.append(now - float(stamp))
    results.put(("done", window.rate(), latencies))


def send_socket(address, size, seconds, ready):
    import socket

    frame = frames_for(*size, n=1)[0].tobytes()
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port))) as s:
        ready.set()
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                s.sendall(frame)
        except OSError:
            pass  # the receiver counted enough and closed


def receive_socket(address, size, seconds, results, warmup):
    import socket

    width, height = size
    buf = bytearray(width * height * 3)
    view = memoryview(buf)
    host, port = address.rsplit(":", 1)
    with socket.create_server((host, int(port))) as server:
        results.put(("bound", address))
        conn, _ = server.accept()
        window = Window(seconds, warmup)
        with conn:
            while True:
                got = 0
                while got < len(buf):
                    n = conn.recv_into(view[got:])
                    if n == 0:
                        results.put(("done", window.rate(), []))
                        return
                    got += n
                if window.arrived() is None:
                    break
    results.put(("done", window.rate(), []))


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_case(who, size, codec, fps, seconds, warmup=1.0):
    """One sender and one receiver process; (frames per second received, latencies)."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    address = f"127.0.0.1:{free_port()}"
    if who == "framewire":
        receiver = ctx.Process(target=receive_framewire, args=(address, seconds, results, warmup))
    elif who == "socket":
        receiver = ctx.Process(
            target=receive_socket, args=(address, size, seconds, results, warmup)
        )
    else:
        receiver = ctx.Process(
            target=receive_imagezmq, args=(address, seconds, results, warmup, codec)
        )
    receiver.start()
    kind, bound = results.get(timeout=60)
    assert kind == "bound"
    ready = ctx.Event()
    if who == "socket":
        sender = ctx.Process(target=send_socket, args=(bound, size, seconds + warmup + 2, ready))
    else:
        target = send_framewire if who == "framewire" else send_imagezmq
        sender = ctx.Process(
            target=target, args=(bound, size, codec, fps, seconds + warmup + 2, ready)
        )
    sender.start()
    kind, rate, latencies = results.get(timeout=seconds + 120)
    sender.join(timeout=30)
    if sender.is_alive():
        sender.kill()
    receiver.join(timeout=30)
    if receiver.is_alive():
        receiver.kill()
    return rate, latencies


def percentile(values, q):
    return float(np.percentile(np.array(values) * 1e3, q)) if values else None


# --- a hub restarted mid-stream ------------------------------------------------------------


def restart_receiver(who, address, results, wait, first):
    """A hub that reports when it is up and its first frame's time (None after `wait`
    seconds). The `first` hub takes frames for a second, then takes one more and dies with
    it (killed before it answers), as a hub that crashes while it handles a frame."""
    if who == "framewire":
        import framewire

        with framewire.Hub(address) as hub:
            results.put(("up", time.time()))
            try:
                hub.recv(timeout=wait)
                results.put(("frame", time.time()))
            except TimeoutError:
                results.put(("frame", None))
            end = time.monotonic() + 1.0
            while first and time.monotonic() < end:
                hub.recv()
            if first:
                hub.recv()
                results.put(("dying", time.time()))
                time.sleep(60)
    else:
        import imagezmq
        import zmq

        hub = imagezmq.ImageHub(open_port=f"tcp://{address}")
        results.put(("up", time.time()))
        poller = zmq.Poller()
        poller.register(hub.zmq_socket, zmq.POLLIN)
        if poller.poll(wait * 1000):
            hub.recv_image()
            hub.send_reply(b"OK")
            results.put(("frame", time.time()))
        else:
            results.put(("frame", None))
        end = time.monotonic() + 1.0
        while first and time.monotonic() < end:
            hub.recv_image()
            hub.send_reply(b"OK")
        if first:
            hub.recv_image()  # and no reply: the hub dies handling this frame
            results.put(("dying", time.time()))
            time.sleep(60)


def restart_case(who, size, wait=10.0):
    """Sender at 30 fps; the hub dies handling a frame after a second, and a new one starts
    on its port.
    Returns seconds from the new hub's start to its first frame, or None (none within `wait`)."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    address = f"127.0.0.1:{free_port()}"
    first = ctx.Process(target=restart_receiver, args=(who, address, results, 30.0, True))
    first.start()
    assert results.get(timeout=60)[0] == "up"
    ready = ctx.Event()
    target = send_framewire if who == "framewire" else send_imagezmq
    sender = ctx.Process(target=target, args=(address, size, "raw", 30, 6 + wait, ready))
    sender.start()
    ready.wait(timeout=60)
    results.get(timeout=60)  # the first hub's frame
    assert results.get(timeout=60)[0] == "dying"
    first.kill()
    first.join()
    # A queue of its own: a process killed while it used a queue may leave it locked.
    results = ctx.Queue()
    second = ctx.Process(target=restart_receiver, args=(who, address, results, wait, False))
    second.start()
    _, up = results.get(timeout=60)
    _, got = results.get(timeout=wait + 60)
    second.join(timeout=30)
    sender.kill()
    sender.join()
    return None if got is None else got - up


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    seconds = 2.0 if args.quick else args.seconds
    out = {}
    # Raw cases alternate their contenders over a few rounds and report each one's median
    # (rates) or its latencies pooled: on this noisy 2-core machine a single run can land
    # well off its neighbours either way.
    rounds = 1 if args.quick else 3
    for w, h in SIZES:
        size = (w, h)
        key = f"{w}x{h}"
        case = {}
        rates = {"framewire": [], "imagezmq": [], "socket": []}
        for _ in range(rounds):
            for who, got in rates.items():
                got.append(run_case(who, size, "raw", 0, seconds)[0])
        for who, got in rates.items():
            name = "socket_fps" if who == "socket" else f"{who}_raw_fps"
            case[name] = round(statistics.median(got), 1)
            runs = ", ".join(f"{r:.0f}" for r in got)
            print(f"{key} raw as fast as possible, {who}: {runs} fps", file=sys.stderr)
        for who in ("framewire", "imagezmq"):
            rate, _ = run_case(who, size, "jpeg", 0, seconds)
            case[f"{who}_jpeg_fps"] = round(rate, 1)
            print(f"{key} jpeg as fast as possible, {who}: {rate:.1f} fps", file=sys.stderr)
        latencies = {"framewire": [], "imagezmq": []}
        for _ in range(max(1, rounds - 1)):
            for who, got in latencies.items():
                # Some 600 frames a run.
                got.extend(run_case(who, size, "raw", 30, seconds * 4)[1])
        for who, lat in latencies.items():
            case[f"{who}_p50_ms"] = round(percentile(lat, 50), 2)
            case[f"{who}_p99_ms"] = round(percentile(lat, 99), 2)
            print(
                f"{key} raw at 30 fps, {who}: p50 {case[f'{who}_p50_ms']} ms, "
                f"p99 {case[f'{who}_p99_ms']} ms over {len(lat)} frames",
                file=sys.stderr,
            )
        out[key] = case
    for who in ("framewire", "imagezmq"):
        after = restart_case(who, (640, 480))
        ms = None if after is None else round(after * 1e3, 1)
        out.setdefault("restart", {})[f"{who}_ms"] = ms
        print(f"hub restarted, {who}: first frame after {after}", file=sys.stderr)
    import framewire
    import imagezmq
    import zmq

    out["versions"] = {
        "framewire": framewire.__version__,
        "imagezmq": imagezmq.__version__,
        "pyzmq": zmq.__version__,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
