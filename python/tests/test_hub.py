"""The hub: three senders to one hub, each frame under its sender's name; a hub restarted
while senders go on; the token both ways; names and full hubs."""

import numpy as np
import pytest

import framewire
from conftest import pattern, until

TOKEN = "a-token-of-sixteen-bytes-or-more"


def test_three_senders_push_to_one_hub_each_by_its_name(hub):
    frames = {f"cam-{i}": np.full((48, 64, 3), 40 * i, np.uint8) for i in range(3)}
    senders = [framewire.Sender(hub.address, name=n, codec="raw") for n in frames]
    got = {}

    def all_three():
        for sender, frame in zip(senders, frames.values()):
            sender.send(frame)
        try:
            name, frame, info = hub.recv(timeout=0.05)
        except TimeoutError:
            return False
        got[name] = (frame, info)
        return len(got) == 3

    until(all_three, "a frame from each of the 3 senders")
    assert hub.senders == ["cam-0", "cam-1", "cam-2"]
    for name, (frame, info) in got.items():
        assert np.array_equal(frame, frames[name]), name
        assert info.name == name and info.codec == "raw"
    assert all(s.connected for s in senders)
    for s in senders:
        s.close()
    until(lambda: hub.senders == [], "the hub sees the senders leave")


def test_a_sender_that_waits_drops_nothing_however_fast_it_sends(hub):
    """send(frame, wait=True) as fast as the loop goes: every frame goes out, none is replaced
    on the way (the hub's own newest-wins slot may still skip some its program did not take)."""
    frames = [pattern(480, 640, seed) for seed in range(4)]
    with framewire.Sender(hub.address, name="fast", codec="raw") as sender:
        sender.send(frames[0])
        assert sender.wait_connected(timeout=20)
        taken = []
        for i in range(300):
            sender.send(frames[i % 4], wait=True)
            try:
                _, frame, info = hub.recv(timeout=0)
                taken.append((frame, info.seq))
            except TimeoutError:
                pass
        assert sender.frames == 301
        assert sender.dropped == 0
    assert taken, "the hub took frames meanwhile"
    for frame, seq in taken:
        assert np.array_equal(frame, frames[(seq - 1) % 4] if seq else frames[0]), seq


def test_a_sender_carries_on_through_a_hub_restart_and_counts_what_it_dropped():
    first = framewire.Hub("127.0.0.1:0")
    address = first.address
    frame = pattern()
    with framewire.Sender(address, name="door", codec="raw") as sender:

        def from_hub(h):
            sender.send(frame)
            try:
                return h.recv(timeout=0.05)
            except TimeoutError:
                return None

        until(lambda: from_hub(first), "a frame at the first hub")
        first.close()
        # The hub is away: send() never blocks, and what it cannot deliver is dropped.
        until(lambda: not sender.connected, "the sender notices the hub is gone")
        for _ in range(20):
            sender.send(frame)
        assert sender.last_error is not None
        with framewire.Hub(address) as second:
            name, got, _ = until(lambda: from_hub(second), "a frame at the restarted hub")
            assert name == "door" and np.array_equal(got, frame)
        assert sender.dropped >= 19, sender.dropped
        assert sender.frames >= 22


def test_the_token_is_proved_both_ways_and_a_wrong_one_is_refused():
    frame = pattern()
    with framewire.Hub("127.0.0.1:0", token=TOKEN) as hub:
        with framewire.Sender(hub.address, name="right", codec="raw", token=TOKEN) as right:
            right.send(frame)
            assert right.wait_connected(timeout=20)
        wrong = framewire.Sender(hub.address, name="wrong", codec="raw", token=TOKEN + "x")
        wrong.send(frame)
        with pytest.raises(framewire.Error, match="wrong token"):
            wrong.wait_connected(timeout=20)
        with pytest.raises(framewire.Error, match="the hub refused \"wrong\": .*wrong token"):
            wrong.send(frame)
        wrong.close()
        none = framewire.Sender(hub.address, name="none", codec="raw", token=None)
        none.send(frame)
        with pytest.raises(framewire.Error, match="token"):
            none.wait_connected(timeout=20)
        none.close()
    # A server and its viewer: the same token rule.
    with framewire.Server("127.0.0.1:0", codec="raw", token=TOKEN, size=(64, 48)) as server:
        with framewire.Viewer(server.address, token="another-token-of-16-bytes") as viewer:
            with pytest.raises(framewire.Error, match="wrong token"):
                viewer.recv(timeout=20)


def test_a_name_the_hub_would_not_take_is_refused_at_once(hub):
    with pytest.raises(ValueError, match="name: .*letters, digits"):
        framewire.Sender(hub.address, name="two words")
    with pytest.raises(ValueError, match="name: .*1 to 64"):
        framewire.Sender(hub.address, name="x" * 65)


def test_a_full_hub_has_its_extra_sender_wait_and_join_when_there_is_room():
    frame = pattern()
    with framewire.Hub("127.0.0.1:0", max_senders=1) as hub:
        one = framewire.Sender(hub.address, name="one", codec="raw")
        one.send(frame)
        assert one.wait_connected(timeout=20)
        two = framewire.Sender(hub.address, name="two", codec="raw")
        two.send(frame)
        until(lambda: two.last_error and "busy" in two.last_error, "the second told busy")
        one.close()
        until(lambda: (two.send(frame), two.connected)[1], "the second joins")
        two.close()
