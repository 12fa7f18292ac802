"""Bulk mode without Ray (``tingji batch`` in this process), its inputs, and the parts of the
cluster support that need no cluster: the per-node plan, a missing Ray, an unreachable one,
and the job runner handing files to workers elsewhere."""

from __future__ import annotations

import csv
import json
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

from tingji.bulk import find_items
from tingji.cli import main
from tingji.cluster.connect import cluster_info, require_ray
from tingji.cluster.plan import models_on
from tingji.config import Settings
from tingji.errors import MissingExtraError, OptionError
from tingji.jobs.runner import FileProgress, JobRunner, Recognised
from tingji.jobs.storage import Storage
from tingji.types import ModelInfo, NodeInfo, Transcript, options_from_dict

from .conftest import shared_clip

SONG = "zh/fireredasr/IT0011W0001.wav"  # 换一首歌
SHORT = "zh/speechio/e5oipIfM49I__20190201_CCTV_1.wav"  # 各位观众晚上好


def test_a_directory_gives_its_audio_files_named_after_their_folders(tmp_path: Path) -> None:
    for name in ("a.wav", "a.mp3", "sub/b.flac", "sub/notes.txt", ".hidden.wav"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    items = find_items(tmp_path)
    assert [(i.path.name, i.key) for i in items] == [
        ("a.mp3", "a"),
        ("a.wav", "a.wav"),  # beside a.mp3: its outputs keep the extension apart
        ("b.flac", "sub/b"),
    ]


def test_manifests_list_paths_relative_to_themselves(tmp_path: Path) -> None:
    (tmp_path / "calls").mkdir()
    listed = tmp_path / "list.csv"
    listed.write_text("path,speaker\ncalls/one.wav,A\n/elsewhere/two.mp3,B\n\n", encoding="utf-8")
    items = find_items(listed)
    assert [(i.path, i.key) for i in items] == [
        (tmp_path / "calls/one.wav", "calls/one"),
        (Path("/elsewhere/two.mp3"), "elsewhere/two"),
    ]
    lines = tmp_path / "list.jsonl"
    lines.write_text(json.dumps({"path": "calls/one.wav"}) + "\n\n", encoding="utf-8")
    assert [i.key for i in find_items(lines)] == ["calls/one"]
    (tmp_path / "bad.csv").write_text("file\nx.wav\n", encoding="utf-8")
    with pytest.raises(OptionError, match="no 'path' column"):
        find_items(tmp_path / "bad.csv")
    (tmp_path / "bad.jsonl").write_text("[1]\n", encoding="utf-8")
    with pytest.raises(OptionError, match="line 1"):
        find_items(tmp_path / "bad.jsonl")


def test_bulk_in_this_process_writes_outputs_and_a_rerun_skips_them(
    tmp_path: Path, model_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "archive"
    (source / "day2").mkdir(parents=True)
    shutil.copy(shared_clip(SONG), source)
    shutil.copy(shared_clip(SHORT), source / "day2")
    (source / "broken.wav").write_bytes(b"RIFF" + bytes(4000))
    out = tmp_path / "out"
    argv = [
        "--data-dir", str(tmp_path / "data"), "batch", str(source), "-o", str(out),
        "-f", "txt,csv", "--no-progress",
    ]  # fmt: skip
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TINGJI_MODELS_DIR", str(model_cache))
        assert main(argv) == 1
        first = capsys.readouterr().err
        assert "2 recognised, 0 skipped, 1 failed" in first
        assert "in this process" in first
        assert "换一首歌" in (out / "IT0011W0001.txt").read_text(encoding="utf-8")
        assert (out / "day2" / f"{Path(SHORT).stem}.csv").is_file()
        assert not list(out.rglob(".*.part"))
        stamp = (out / "IT0011W0001.txt").stat().st_mtime_ns
        assert main(argv) == 1
        assert "0 recognised, 2 skipped, 1 failed" in capsys.readouterr().err
    assert (out / "IT0011W0001.txt").stat().st_mtime_ns == stamp
    with (out / "summary.csv").open(encoding="utf-8", newline="") as handle:
        rows = {Path(r["file"]).name: r for r in csv.DictReader(handle)}
    assert rows["IT0011W0001.wav"]["status"] == "done"
    assert float(rows["IT0011W0001.wav"]["duration_s"]) == pytest.approx(1.99, abs=0.05)
    assert rows["broken.wav"]["status"] == "failed" and rows["broken.wav"]["error"]
    assert rows["IT0011W0001.wav"]["outputs"] == "IT0011W0001.txt;IT0011W0001.csv"


def test_batch_help_is_written_for_a_newcomer(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["batch", "--help"])
    shown = capsys.readouterr().out
    for words in ("Resumable", "--ray-address", "summary.csv", "批量识别", "manifest"):
        assert words in shown


def node(cpus: float, gpus: float = 0.0, alive: bool = True) -> NodeInfo:
    return NodeInfo("n" * 16, "box (10.0.0.1, nnnnnnnn)", "10.0.0.1:1", alive, cpus, gpus)


def test_one_model_per_gpu_or_per_n_cores() -> None:
    settings = Settings(ray_cpus_per_model=4)
    gpus = models_on(node(16, 2), settings)
    assert [(s.gpus, s.cpus, s.files) for s in gpus] == [(1.0, 4.0, 4), (1.0, 4.0, 4)]
    cores = models_on(node(16), settings)
    assert [(s.cpus, s.threads, s.files) for s in cores] == [(4.0, 4, 1)] * 4
    assert [s.threads for s in models_on(node(2), settings)] == [2]  # a small node: one model
    assert models_on(node(16, alive=False), settings) == []
    assert models_on(node(0), settings) == []
    assert [s.files for s in models_on(node(8), Settings(ray_files_per_model=3))] == [3, 3]


def test_without_ray_the_error_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'tingji\[scale\]'"):
        require_ray()


def test_a_server_for_a_cluster_without_ray_does_not_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setenv("TINGJI_RAY_ADDRESS", "auto")
    assert main(["--data-dir", str(tmp_path), "serve", "--port", "7999"]) == 2
    assert "pip install 'tingji[scale]'" in capsys.readouterr().err


def test_an_unreachable_cluster_is_reported_not_raised() -> None:
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'tingji[scale]'")
    info = cluster_info("127.0.0.1:9")  # the discard port: nothing listens there
    assert info.nodes == [] and info.error is not None and "does not answer" in info.error
    assert "HOST:PORT" in (cluster_info("nonsense").error or "")


def _transcript(text: str) -> Transcript:
    return Transcript(text, [], "zh", 1.0, 1.0, 0.1, ModelInfo("fake", "fake", "-", "cpu", "-"))


class OnePlace:
    """Workers with one place, and the gate closed until ``open`` is set."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.reserved = 0

    def reserve(self, timeout: float) -> bool:
        if not self.open.wait(timeout):
            return False
        self.reserved += 1
        return True

    def release(self) -> None:
        self.reserved -= 1


def test_the_runner_takes_files_only_when_a_worker_is_free_and_records_its_node(
    tmp_path: Path,
) -> None:
    storage = Storage(tmp_path / "history.db")
    seen: list[str | None] = []

    def recognise(path: Path, options: object, model: str, progress: FileProgress) -> Recognised:
        progress.node = "node-7"
        seen.append(runner.status("j1").files[0].node)  # type: ignore[union-attr]
        return Recognised(_transcript("好"), "node-7")

    workers = OnePlace()
    runner = JobRunner(storage, tmp_path, recognise, options_from_dict, lanes=2, workers=workers)
    storage.create_job("j1", [("a.wav", "a.wav", 10)], options={}, model="base")
    runner.start()
    try:
        time.sleep(1.2)
        job = runner.status("j1")
        assert job is not None and job.status == "queued"  # no worker free: nothing claimed
        workers.open.set()
        deadline = time.monotonic() + 10
        while (job := runner.status("j1")) is not None and job.status != "done":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        runner.stop()
        storage.close()
    assert seen == ["node-7"]  # the node shows while the file runs
    assert job is not None and job.files[0].node == "node-7"
