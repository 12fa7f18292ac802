"""The stores on SQLite and on PostgreSQL alike: search, hotword lists, voices, jobs and their
claims; and what several servers on one database need: claims never taken twice, leases, a
cancel on one server seen by another, audio kept in the database."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tingji.jobs.migrations import MIGRATIONS
from tingji.jobs.storage import Storage
from tingji.types import ModelInfo, Segment, Transcript

Open = Callable[[], Storage]
MODEL = ModelInfo("fake", "fake", "-", "cpu", "int8")


def _transcript(text: str, speakers: list[str | None] | None = None) -> Transcript:
    names = speakers or [None]
    segments = [Segment(n, n, n + 1.0, text, speaker=s) for n, s in enumerate(names)]
    return Transcript(text, segments, "zh", 0.9, 1.0, 0.1, MODEL)


ENTRIES = [
    ("今天讨论第三季度的预算", "周会.wav", ["王经理"]),
    ("语音识别的准确率提高了", "demo.mp3", ["S1", "李工"]),
    ("Hello World from Tingji", "English Talk.m4a", None),
    ("100% 完成, file_name 带下划线", "a_b.wav", None),
    ('他说 "好的" 然后离开', "quote.wav", ["S2"]),
]
QUERIES = [
    "预算", "预", "第三季度", "周会", "王经理", "王", "李工", "识别的准", "hello", "WORLD",
    "tingji", "english talk", "100%", "%", "_", "file_name", "a_b", '"好的"', '"', "不存在",
    "季度的预算x", "m4a", "S1", "s2", "离开", " 预算 ",
]  # fmt: skip


def _expected(query: str) -> set[str]:
    """The names of the entries that hold ``query`` as a substring (Latin case ignored)."""
    q = query.strip().lower()
    return {
        name
        for text, name, speakers in ENTRIES
        if any(q in field.lower() for field in (text, name, *(speakers or [])))
    }


def test_search_finds_the_same_substrings_on_both(open_storage: Open) -> None:
    storage = open_storage()
    for text, name, speakers in ENTRIES:
        storage.add_transcription(_transcript(text, speakers), name=name, options={})
    for query in QUERIES:
        found, total = storage.search(query, limit=50)
        assert {e.name for e in found} == _expected(query), query
        assert total == len(found)
    listed = [e.name for e in storage.iter_entries("预算")]
    assert listed == ["周会.wav"]
    assert storage.search("", language="en")[1] == 0
    assert storage.search("")[1] == len(ENTRIES)


def test_search_follows_corrections_and_deletions(open_storage: Open) -> None:
    storage = open_storage()
    first = storage.add_transcription(_transcript("原来的文字"), name="x.wav", options={})
    storage.update_transcription(
        first,
        lambda e: e.__class__(
            **{**e.__dict__, "text": "改正的文字", "segments": [Segment(0, 0, 1, "改正的文字")]}
        ),
    )
    assert [e.id for e in storage.search("改正的")[0]] == [first]
    assert storage.search("原来的")[0] == []
    storage.delete_transcriptions([first])
    assert storage.search("文字")[1] == 0


def test_hotword_lists_and_voices(open_storage: Open) -> None:
    storage = open_storage()
    storage.save_hotword_list("医疗", ["阿司匹林", "CT"])
    storage.save_hotword_list("医疗", ["布洛芬"])  # the same name replaces it
    storage.save_hotword_list("会议", ["达摩院"])
    assert open_storage().hotword_lists() == {"会议": ["达摩院"], "医疗": ["布洛芬"]}
    assert storage.delete_hotword_list("会议") and not storage.delete_hotword_list("会议")
    voice = np.linspace(-1, 1, 256, dtype=np.float32)
    storage.save_voice("王经理", voice, "clip.wav")
    storage.save_voice("王经理", voice * 0.5, "entry 3, S1")
    (kept,) = open_storage().voices()
    assert kept.name == "王经理" and kept.source == "entry 3, S1"
    np.testing.assert_array_equal(kept.embedding, voice * 0.5)
    assert storage.delete_voice("王经理") and storage.voices() == []


def _job(storage: Storage, job_id: str, files: int) -> None:
    storage.create_job(
        job_id,
        [(f"{job_id}-{n}.wav", f"{job_id}-{n}.wav", 100) for n in range(files)],
        options={"language": "zh"},
        model="fake",
    )


def test_a_job_runs_through_its_files_once(open_storage: Open) -> None:
    storage = open_storage()
    _job(storage, "job1", 3)
    _job(storage, "job2", 1)
    claims = []
    while (item := storage.next_queued_file(owner="a", lease_s=30, node="box-a")) is not None:
        claims.append(item)
    assert [(j, f.name) for j, f in claims] == [
        ("job1", "job1-0.wav"),
        ("job1", "job1-1.wav"),
        ("job1", "job1-2.wav"),
        ("job2", "job2-0.wav"),
    ]
    assert all(f.node == "box-a" and f.status == "running" for _, f in claims)
    (_, one), (_, two), (_, three), (_, four) = claims
    entry = storage.finish_file("job1", one.id, _transcript("一"), {}, node="worker-7")
    assert entry and storage.finish_file("job1", one.id, _transcript("一"), {}) == 0  # once
    storage.fail_file("job1", two.id, "bad audio", 2.0)
    assert storage.get_job("job1").status == "running"  # type: ignore[union-attr]
    storage.finish_file("job1", three.id, _transcript("三"), {})
    job = storage.get_job("job1")
    assert job is not None and job.status == "done"
    assert [f.status for f in job.files] == ["done", "failed", "done"]
    assert job.files[0].node == "worker-7" and job.files[0].transcription_id == entry
    assert job.files[2].node  # this host's name by default
    storage.fail_file("job2", four.id, "bad", None)
    assert storage.get_job("job2").status == "failed"  # type: ignore[union-attr]
    assert [e.job_id for e in storage.search("一")[0]] == ["job1"]
    assert storage.queued_files() == 0
    assert storage.delete_job("job2") == ["job2-0.wav"]
    assert storage.get_job("job2") is None and [j.id for j in storage.list_jobs()] == ["job1"]


def test_claims_from_two_servers_never_take_a_file_twice(open_storage: Open) -> None:
    setup = open_storage()
    for n in range(4):
        _job(setup, f"j{n}", 40)
    servers = [open_storage(), open_storage()]
    taken: list[list[int]] = [[] for _ in range(6)]

    def lane(n: int) -> None:
        storage = servers[n % 2]
        while (item := storage.next_queued_file(owner=f"s{n % 2}", lease_s=30)) is not None:
            taken[n].append(item[1].id)

    threads = [threading.Thread(target=lane, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    ids = [i for lane_ids in taken for i in lane_ids]
    assert len(ids) == 160 and len(set(ids)) == 160
    assert setup.queued_files() == 160  # all running, none queued
    assert setup.next_queued_file() is None


def test_a_live_servers_files_are_not_requeued_a_dead_ones_are(open_storage: Open) -> None:
    alive, starting = open_storage(), open_storage()
    _job(alive, "j", 3)
    live = alive.next_queued_file(owner="alive", lease_s=60)
    dead = alive.next_queued_file(owner="dead", lease_s=0.2)
    unleased = alive.next_queued_file()  # as a caller that takes no lease
    assert live and dead and unleased
    time.sleep(0.3)
    if starting.engine == "sqlite":  # one box: everything running at a start was interrupted
        assert starting.requeue_interrupted() == 3
        return
    assert starting.requeue_interrupted() == 2  # the expired and the unleased one
    job = starting.get_job("j")
    assert job is not None
    assert [f.status for f in job.files] == ["running", "queued", "queued"]
    assert starting.hold_claims("alive", [live[1].id], lease_s=60) == {live[1].id}
    assert starting.hold_claims("dead", [dead[1].id]) == set()
    assert starting.requeue_expired() == 0


def test_a_lease_that_runs_out_is_requeued_by_a_live_server(open_storage: Open) -> None:
    a, b = open_storage(), open_storage()
    _job(a, "j", 2)
    kept = a.next_queued_file(owner="a", lease_s=0.3)
    lost = a.next_queued_file(owner="gone", lease_s=0.3)
    assert kept and lost
    time.sleep(0.2)
    assert a.hold_claims("a", [kept[1].id], lease_s=30) == {kept[1].id}  # renewed
    time.sleep(0.2)
    assert b.requeue_expired() == 1
    again = b.next_queued_file(owner="b", lease_s=30)
    assert again is not None and again[1].id == lost[1].id
    assert a.hold_claims("gone", [lost[1].id], lease_s=30) == set()  # taken over
    # the first holder finishing late saves nothing twice
    assert b.finish_file("j", lost[1].id, _transcript("x"), {}) > 0
    assert a.finish_file("j", lost[1].id, _transcript("x"), {}) == 0


def test_a_cancel_on_one_server_is_seen_by_the_holder(open_storage: Open) -> None:
    a, b = open_storage(), open_storage()
    _job(a, "j", 2)
    item = a.next_queued_file(owner="a", lease_s=30)
    assert item is not None
    assert a.hold_claims("a", [item[1].id]) == {item[1].id}
    assert b.cancel_job("j") and not b.cancel_job("nope")
    assert a.hold_claims("a", [item[1].id], lease_s=30) == set()
    assert a.next_queued_file() is None
    job = a.get_job("j")
    assert job is not None and job.status == "cancelled"
    assert {f.status for f in job.files} == {"cancelled"}


def test_two_servers_finishing_a_jobs_last_files_at_once_settle_it(open_storage: Open) -> None:
    a, b = open_storage(), open_storage()
    for n in range(10):
        _job(a, f"j{n}", 2)
    pairs = []
    for _ in range(10):
        first, second = a.next_queued_file(), a.next_queued_file()
        assert first and second
        pairs.append((first[1].id, second[1].id))
    barrier = threading.Barrier(2)

    def finish(storage: Storage, which: int) -> None:
        for n, pair in enumerate(pairs):
            barrier.wait(30)
            storage.finish_file(f"j{n}", pair[which], _transcript("好"), {})

    threads = [threading.Thread(target=finish, args=(s, w)) for w, s in enumerate((a, b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [a.get_job(f"j{n}").status for n in range(10)] == ["done"] * 10  # type: ignore[union-attr]


def test_audio_is_kept_in_a_shared_database(open_storage: Open, tmp_path: Path) -> None:
    a, b = open_storage(), open_storage()
    if not a.shares_audio:
        pytest.skip("SQLite keeps audio in the data dir only")
    source = tmp_path / "upload.wav"
    data = np.random.default_rng(1).bytes(int(2.5 * 2**20))  # three chunks
    source.write_bytes(data)
    a.put_audio("20260101-x.wav", source)
    a.put_audio("20260101-x.wav", source)  # again: nothing happens
    target = tmp_path / "elsewhere" / "20260101-x.wav"
    assert b.fetch_audio("20260101-x.wav", target) and target.read_bytes() == data
    assert not b.fetch_audio("20260101-nope.wav", tmp_path / "nope.wav")
    assert b.audio_stored_before(time.time() + 1) == ["20260101-x.wav"]
    assert b.audio_stored_before(time.time() - 60) == []
    b.delete_audio(["20260101-x.wav"])
    assert not a.fetch_audio("20260101-x.wav", tmp_path / "again.wav")


def test_servers_starting_together_apply_each_migration_once(open_storage: Open) -> None:
    opened: list[Storage] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            opened.append(open_storage())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and len(opened) == 4
    assert sum(len(s.migrated) for s in opened) == len(MIGRATIONS)  # all by one of them
    rows = opened[0]._query("SELECT id, name FROM migrations ORDER BY id")
    assert [tuple(r) for r in rows] == [(n, m.name) for n, m in enumerate(MIGRATIONS, start=1)]
