"""One alert per episode (appliance/dock/episodes.py) and the claims to a paired camera's address
(appliance/dock/claims.py): the bookkeeping, on a real catalog, with a clock the test moves."""

from __future__ import annotations

from nacl.signing import SigningKey

from appliance.dock import claims as claims_module
from appliance.dock import devices, protocol
from appliance.dock.claims import Claims
from appliance.dock.episodes import EPISODE_GAP_S, PERSIST_EVERY_S, EpisodeStore, Episodes


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_episode_lasts_while_it_is_seen_and_ends_after_a_quiet_gap_or_when_ended():
    clock = Clock()
    episodes = Episodes(clock=clock)
    assert episodes.seen("a") is True  # the first sighting: alert
    for _ in range(50):  # seen again and again, also just inside the gap: the same episode
        clock.now += EPISODE_GAP_S - 1
        assert episodes.seen("a") is False
    assert episodes.seen("b") is True  # another key: its own episode
    clock.now += EPISODE_GAP_S + 1
    assert list(episodes.active()) == []
    assert episodes.seen("a") is True  # quiet for longer than the gap: a new episode
    assert episodes.end("a") is True and episodes.end("a") is False
    assert episodes.seen("a") is True  # ended (the thing got better): the next sighting alerts again


def _paired(box, serial: str, port: int) -> None:
    key = SigningKey.generate()
    devices.seen(box, devices.Advert(serial, "10.0.0.5", port, "M", "1", "1", protocol.key_fingerprint(key),
                                     True, f"{serial}._bodycam._tcp.local.", {}))
    box.catalog.db["devices"].update(serial, {"paired": 1, "public_key": protocol.key_hex(key),
                                              "fingerprint": protocol.key_fingerprint(key)})


def test_an_impostor_is_alerted_once_per_host_and_episode_and_never_moves_the_camera(box):
    _paired(box, "CLAIM-1", 8000)
    clock = Clock()
    claims = Claims(box, retry_s=5, clock=clock)
    for port in (9000, 9001, 9002):  # one host hopping ports, each claim failing several times
        claim = claims.add("CLAIM-1", "10.0.0.66", port)
        for _ in range(3):
            claims.failed(claim, "answers with key x", "10.0.0.5:8000")
            assert claim not in claims.due("CLAIM-1")  # not challenged again on every advert or probe
            clock.now += claims_module.CHALLENGE_RETRY_S
            assert claim in claims.due("CLAIM-1")
    alerts = devices.alerts(box.catalog, "CLAIM-1")
    assert [a["kind"] for a in alerts] == ["spoofed_serial"] and "10.0.0.66:9000" in alerts[0]["message"]
    assert {i["address"] for i in claims.impostors("CLAIM-1")} == {"10.0.0.66:9000", "10.0.0.66:9001",
                                                                    "10.0.0.66:9002"}
    row = devices.get_device(box.catalog, "CLAIM-1")
    assert (row["address"], row["port"]) == ("10.0.0.5", 8000)
    for claim in claims.due("CLAIM-1"):  # it left: no longer shown as an impostor
        claims.unreachable(claim)
    assert claims.impostors("CLAIM-1") == []


def test_a_proven_claim_moves_the_camera_and_keeps_its_former_address_as_a_claim(box):
    _paired(box, "CLAIM-2", 8000)
    claims = Claims(box, retry_s=5, clock=Clock())
    claim = claims.add("CLAIM-2", "10.0.0.9", 8100)
    claims.proven(claim, "10.0.0.5", 8000)
    row = devices.get_device(box.catalog, "CLAIM-2")
    assert (row["address"], row["port"], row["online"]) == ("10.0.0.9", 8100, 1)
    assert [(c.address, c.port) for c in claims.due("CLAIM-2")] == [("10.0.0.5", 8000)]
    assert devices.alerts(box.catalog, "CLAIM-2") == []


def test_an_episode_alerted_before_a_restart_goes_on_after_it_and_a_new_one_still_alerts(box):
    """Each Episodes below is a new run of the service on the same catalog: its monotonic clock starts
    elsewhere, the wall clock goes on."""
    wall = Clock()

    def run() -> Episodes:
        return Episodes(clock=Clock(), store=EpisodeStore(box.catalog, "spoofs", wall=wall))

    key = ("CAM-7", "10.0.0.9")
    first = run()
    assert first.seen(key) is True
    for _ in range(20):  # an impostor advertising every 10 s for 200 s: a handful of writes, not 20
        wall.now += 10
        first.clock.now += 10
        assert first.seen(key) is False
    stored = box.catalog.db.execute("SELECT since, last_seen FROM device_episodes").fetchall()
    assert stored == [(1000.0, 1180.0)]  # written at 1000, 1060, 1120, 1180: every PERSIST_EVERY_S

    wall.now += 300  # the service restarts within the gap: the same episode, no new alert
    second = run()
    assert second.seen(key) is False
    assert second.seen(("CAM-7", "10.0.0.10")) is True  # another host: an episode of its own

    wall.now += EPISODE_GAP_S + PERSIST_EVERY_S + 1  # down for longer than the gap: a new episode
    third = run()
    assert third.seen(key) is True
    assert third.end(key) is True  # it got better: ended, also for the next run
    assert run().seen(key) is True
    assert Episodes(clock=Clock()).seen(key) is True  # without a store (a short look-up) nothing is kept
