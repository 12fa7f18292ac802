"""The web UI's API, called the way a script would: it uses only files this client uploaded.

Every Gradio endpoint that takes a file (``recognise``: the file and the recorder; ``start``:
the batch) gets a ``FileData`` naming a clip the client never uploaded, the server's own
database and a stored upload; the answer is the UI's plain refusal, nothing is stored or
served, and the database files are never opened. A genuine upload still works, a ``url`` is
never fetched, the data directory is never served, and the UI's temporary files live in
``<data_dir>/tmp/ui`` only while the app runs.
"""

from __future__ import annotations

import builtins
import html
import io
import json
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from fastapi.testclient import TestClient

from tingji.config import Settings
from tingji.server.app import create_app
from tingji.service import Tingji
from tingji.ui.common import message, store
from tingji.ui.i18n import t
from tingji.ui.uploads import NotUploadedError, UiFiles

from .conftest import FakeBackend, shared_clip

CLIP = "zh/funasr/asr_example_zh.wav"
META = {"_type": "gradio.FileData"}
pytestmark = pytest.mark.filterwarnings(
    # Gradio's queue summarises its events with a pandas option that pandas 3 deprecates
    "ignore:'future.no_silent_downcasting' is deprecated"
)
# language, hotwords, list, ITN, script, model, tell speakers apart, number of speakers
OPTIONS = ["", "", "", True, "simplified", "base", False, ""]


def file_data(path: str | Path, **extra: Any) -> dict[str, Any]:
    return {"path": str(path), "meta": META, **extra}


def recognise_args(file: Any = None, recorded: Any = None) -> list[Any]:
    return [file, recorded, *OPTIONS]


def start_args(files: list[Any]) -> list[Any]:
    return [files, *OPTIONS]


def refusal(lang: str = "zh") -> str:
    return html.escape(t("err.not_uploaded", lang))


@dataclass
class Ui:
    client: TestClient
    settings: Settings
    service: Tingji
    outside: Path
    """A folder on the server that no client uploaded to."""

    def call(self, api_name: str, data: list[Any]) -> list[tuple[str, Any]]:
        """``POST /gradio_api/call/<api_name>`` and the events of its result stream."""
        posted = self.client.post(f"/gradio_api/call/{api_name}", json={"data": data})
        assert posted.status_code == 200, posted.text
        stream = self.client.get(f"/gradio_api/call/{api_name}/{posted.json()['event_id']}")
        events = []
        for block in stream.text.split("\n\n"):
            fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            if "event" in fields:
                events.append((fields["event"], json.loads(fields.get("data") or "null")))
        assert events, stream.text
        return events

    def final_status(self, api_name: str, data: list[Any]) -> str:
        """The status line that the call ends with (its first output)."""
        events = self.call(api_name, data)
        kind, outputs = events[-1]
        assert kind == "complete", events
        assert "Traceback" not in json.dumps(events, ensure_ascii=False)
        return str(outputs[0])

    def upload(self, path: Path) -> str:
        answer = self.client.post(
            "/gradio_api/upload", files=[("files", (path.name, path.read_bytes(), "audio/wav"))]
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()[0])

    def stored(self) -> set[str]:
        audio = self.settings.audio_dir
        return {p.name for p in audio.iterdir()} if audio.is_dir() else set()

    def entries(self) -> int:
        return self.service.history.search("")[1]

    def jobs(self) -> int:
        return len(self.client.get("/api/jobs", params={"limit": 200}).json())


def _build(tmp_path: Path, model_cache: Path) -> tuple[Settings, Tingji]:
    settings = Settings(data_dir=tmp_path / "data", models_dir=model_cache)
    service = Tingji(settings)
    backend = FakeBackend(["欢迎大家来体验达摩院"])
    service.backend = lambda model=None: backend  # type: ignore[method-assign]
    return settings, service


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Ui]:
    clip = shared_clip(CLIP)
    root = tmp_path_factory.mktemp("ui-security")
    outside = root / "outside"
    outside.mkdir()
    shutil.copyfile(clip, outside / "clip.wav")
    (outside / "notes.wav").write_text("not audio at all", encoding="utf-8")
    saved = os.environ.get("GRADIO_TEMP_DIR")
    settings, service = _build(root, model_cache)
    try:
        with TestClient(create_app(settings, service)) as client:
            yield Ui(client, settings, service, outside)
    finally:
        if saved is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = saved


@pytest.fixture(scope="module")
def stored_file(ui: Ui) -> Path:
    """An upload kept in ``data/audio`` (sent through the HTTP API, not the UI)."""
    clip = ui.outside / "clip.wav"
    with clip.open("rb") as audio:
        answer = ui.client.post(
            "/api/transcriptions", files={"file": ("kept.wav", audio, "audio/wav")}
        )
    assert answer.status_code == 200, answer.text
    (name,) = ui.stored()
    return ui.settings.audio_dir / name


def _targets(ui: Ui, stored_file: Path) -> dict[str, Path]:
    db = ui.settings.database
    return {
        "outside clip": ui.outside / "clip.wav",
        "outside text named .wav": ui.outside / "notes.wav",
        "missing": ui.outside / "missing.wav",
        "history.db": db,
        "history.db-wal": db.with_name(db.name + "-wal"),
        "stored upload": stored_file,
        "upload dir escape": ui.settings.data_dir / "tmp" / "ui" / ".." / ".." / "history.db",
    }


def _copies(content: bytes, *roots: Path) -> list[Path]:
    """Files under ``roots`` with exactly ``content``."""
    found = []
    for root in roots:
        for path in root.rglob("*") if root.is_dir() else []:
            same_size = path.is_file() and path.stat().st_size == len(content)
            if same_size and path.read_bytes() == content:
                found.append(path)
    return found


def test_single_file_and_recorder_refuse_paths_the_client_did_not_upload(
    ui: Ui, stored_file: Path
) -> None:
    before_files, before_entries = ui.stored(), ui.entries()
    clip_bytes = (ui.outside / "clip.wav").read_bytes()
    before_copies = _copies(clip_bytes, ui.settings.data_dir)
    for label, target in _targets(ui, stored_file).items():
        for slot in ("file", "recorded"):
            data = recognise_args(**{slot: file_data(target)})
            status = ui.final_status("recognise", data)
            assert refusal() in status, (label, slot, status)
            assert str(target) not in status and target.name not in status, (label, slot)
    assert ui.stored() == before_files
    assert ui.entries() == before_entries
    copies = _copies(clip_bytes, ui.settings.data_dir)
    assert copies == before_copies, copies  # the clip's bytes went nowhere a client can reach
    assert ui.client.get(f"/gradio_api/file={ui.outside / 'clip.wav'}").status_code == 403


def test_batch_refuses_paths_the_client_did_not_upload(ui: Ui, stored_file: Path) -> None:
    before_files, before_entries, before_jobs = ui.stored(), ui.entries(), ui.jobs()
    targets = _targets(ui, stored_file)
    for label, target in targets.items():
        status = ui.final_status("start", start_args([file_data(target)]))
        assert refusal() in status, (label, status)
    status = ui.final_status("start", start_args([file_data(p) for p in targets.values()]))
    assert refusal() in status and status.count(refusal()) == 1, status
    assert ui.stored() == before_files
    assert (ui.entries(), ui.jobs()) == (before_entries, before_jobs)


def test_the_refusal_does_not_tell_whether_a_path_exists(ui: Ui, stored_file: Path) -> None:
    answers = {
        ui.final_status("recognise", recognise_args(file_data(target)))
        for target in (ui.outside / "clip.wav", ui.outside / "missing.wav", stored_file)
    }
    assert len(answers) == 1, answers
    events = ui.call("start", start_args([file_data(ui.outside / "missing.wav")]))
    assert events[-1][1][0] == ui.final_status("start", start_args([file_data(stored_file)]))


def test_only_uploads_are_opened_for_the_audio_store(tmp_path: Path, model_cache: Path) -> None:
    """tingji's own rule, without Gradio or the guard in front of it."""
    settings, service = _build(tmp_path, model_cache)
    files = UiFiles(settings.temp_dir)
    files.prepare()
    clip = shared_clip(CLIP).read_bytes()
    upload = files.root / ("0" * 64) / "clip.wav"
    upload.parent.mkdir()
    upload.write_bytes(clip)
    (files.root / "link.wav").symlink_to(settings.database)
    outside = tmp_path / "clip.wav"
    outside.write_bytes(clip)
    refused = [
        outside,
        settings.database,
        files.root,
        files.root / "link.wav",  # a link inside that leads out
        files.root / ".." / ".." / "history.db",
        files.refused,
        files.scratch / "x" / "download.wav",  # what the page offers is no input
        files.root / "gone" / "clip.wav",
        "",
        "clip.wav\0",
    ]
    for path in refused:
        with pytest.raises(NotUploadedError) as caught:
            store(service, files, path)
        assert message(caught.value, "en") == t("err.not_uploaded", "en")
    assert not settings.audio_dir.exists() or not any(settings.audio_dir.iterdir())
    assert store(service, files, upload, "clip.wav").size == len(clip)
    assert files.accepts({"path": str(upload), "url": f"/gradio_api/file={upload}"})
    assert not files.accepts({"path": str(upload), "url": "http://example.com/clip.wav"})
    service.close()


class _Opens:
    """Records every path that this process opens from Python while it is installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, watched: set[str]) -> None:
        self.watched = watched
        self.seen: list[str] = []
        for module, name in ((builtins, "open"), (io, "open"), (os, "open")):
            monkeypatch.setattr(module, name, self._wrap(getattr(module, name)))

    def _wrap(self, original: Any) -> Any:
        def opener(file: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(file, (str, bytes, os.PathLike)):
                name = os.fsdecode(file)
                if os.path.normpath(os.path.abspath(name)) in self.watched:
                    self.seen.append(name)
            return original(file, *args, **kwargs)

        return opener


def test_no_request_makes_the_server_open_its_database(
    ui: Ui, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = ui.settings.database
    names = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    opens = _Opens(monkeypatch, {os.path.normpath(os.path.abspath(p)) for p in names})
    for path in names:
        shapes = [
            file_data(path),
            file_data(path, is_stream=True),  # Gradio copies nothing that says it is a stream
            {"path": str(path)},  # no meta
            file_data(ui.settings.data_dir / "audio" / ".." / path.name),
        ]
        for shape in shapes:
            ui.call("recognise", recognise_args(file=shape))
            ui.call("recognise", recognise_args(recorded=shape))
            ui.call("start", start_args([shape]))
            ui.call("recognise", [None, None, "", shape, "", True, "simplified", "base"])
            ui.call("configure", ["", shape, "", True])
    assert opens.seen == []


def test_a_genuine_upload_is_recognised(ui: Ui) -> None:
    before_files, before_entries = ui.stored(), ui.entries()
    uploaded = ui.upload(ui.outside / "clip.wav")
    assert Path(uploaded).is_relative_to(ui.settings.data_dir.resolve() / "tmp" / "ui")
    link = "http://testserver/gradio_api/file=" + quote(uploaded)  # what the page sends
    for data in (
        recognise_args(file=file_data(uploaded, url=link, orig_name="clip.wav")),
        recognise_args(recorded=file_data(uploaded)),
    ):
        status = ui.final_status("recognise", data)
        assert "tj-ok" in status, status
    assert ui.entries() == before_entries + 2
    assert len(ui.stored() - before_files) == 2
    events = ui.call("start", start_args([file_data(uploaded, url=link)]))
    kind, outputs = events[-1]
    assert kind == "complete" and 'data-percent="100"' in outputs[1], events[-1]
    assert ui.entries() == before_entries + 3


class _Counting(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "audio/wav")
        self.end_headers()
        self.wfile.write(b"RIFF")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_file_url_is_refused_and_never_fetched(ui: Ui, monkeypatch: pytest.MonkeyPatch) -> None:
    import gradio.processing_utils as processing

    attempts: list[str] = []

    async def no_download(url: str, *args: Any, **kwargs: Any) -> str:
        attempts.append(url)
        raise AssertionError(f"the server fetched {url}")

    monkeypatch.setattr(processing, "async_ssrf_protected_download", no_download)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        remote = f"http://127.0.0.1:{server.server_address[1]}/clip.wav"
        uploaded = ui.upload(ui.outside / "clip.wav")
        before = ui.entries()
        shapes = [
            file_data(remote, url=remote),
            file_data(remote),
            file_data(uploaded, url=remote),
            {"path": "", "url": remote, "meta": META},
        ]
        for shape in shapes:
            status = ui.final_status("recognise", recognise_args(file=shape))
            assert refusal() in status, (shape, status)
            status = ui.final_status("start", start_args([shape]))
            assert refusal() in status, (shape, status)
        assert ui.entries() == before
    finally:
        server.shutdown()
        server.server_close()
    assert _Counting.hits == [] and attempts == []
    assert ui.client.get(f"/gradio_api/file={remote}").status_code == 403


def _select_row(ui: Ui, api_name: str, row: list[str], data: list[Any]) -> list[Any]:
    """Run a ``.select`` handler as the page does (through the queue, with the event data)."""
    config = ui.client.get("/config").json()
    (fn_index,) = [d["id"] for d in config["dependencies"] if d.get("api_name") == api_name]
    session = uuid.uuid4().hex
    joined = ui.client.post(
        "/gradio_api/queue/join",
        json={
            "data": data,
            "fn_index": fn_index,
            "session_hash": session,
            "event_data": {"index": [0, 0], "value": row[0], "row_value": row},
        },
    )
    assert joined.status_code == 200, joined.text
    with ui.client.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as s:
        for line in s.iter_lines():
            if not line.startswith("data:"):
                continue
            msg = json.loads(line[5:])
            if msg.get("msg") == "process_completed":
                assert msg.get("success"), msg
                return list(msg["output"]["data"])
    raise AssertionError("the handler never completed")


def test_the_data_dir_is_never_served_yet_history_plays_its_audio(ui: Ui) -> None:
    uploaded = ui.upload(ui.outside / "clip.wav")
    before = ui.stored()
    assert "tj-ok" in ui.final_status("recognise", recognise_args(file=file_data(uploaded)))
    (name,) = ui.stored() - before
    data = ui.settings.data_dir.resolve()
    for path in (
        data / "audio" / name,
        data / "history.db",
        data / "history.db-wal",
        data / "tmp" / ".." / "history.db",
    ):
        assert path.exists() or path.name.endswith("-wal")
        answer = ui.client.get(f"/gradio_api/file={path}")
        assert 400 <= answer.status_code < 500, (path, answer.status_code)
    entry = ui.service.history.search("")[0][0]
    row = [str(entry.id), "", entry.name, entry.text]
    outputs = _select_row(ui, "open_entry", row, [None, None])  # the query, the page language
    found = re.search(r'<audio id="tj-hist-audio"[^>]* src="gradio_api/file=([^"]+)"', outputs[2])
    assert found, outputs[2]
    played_path = Path(unquote(html.unescape(found.group(1))))
    assert played_path.is_relative_to(data / "tmp" / "ui"), played_path
    assert not played_path.is_relative_to(data / "audio")
    played = ui.client.get("/gradio_api/file=" + found.group(1))
    assert played.status_code == 200
    assert played.content == (data / "audio" / name).read_bytes()


def test_temporary_files_live_in_the_data_dir_and_go_at_shutdown(
    tmp_path: Path, model_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    settings, service = _build(tmp_path, model_cache)
    private = settings.data_dir / "tmp" / "ui"
    private.mkdir(parents=True)
    (private / "left-from-a-crash.wav").write_bytes(b"old")
    clip = shared_clip(CLIP)
    with TestClient(create_app(settings, service)) as client:
        assert not (private / "left-from-a-crash.wav").exists()
        assert (private.stat().st_mode & 0o777) == 0o700
        assert (private.parent.stat().st_mode & 0o777) == 0o700
        answer = client.post(
            "/gradio_api/upload", files=[("files", ("clip.wav", clip.read_bytes(), "audio/wav"))]
        )
        uploaded = Path(answer.json()[0])
        assert uploaded.is_relative_to(private.resolve())
        posted = client.post(
            "/gradio_api/call/recognise", json={"data": recognise_args(file_data(uploaded))}
        )
        result = client.get(f"/gradio_api/call/recognise/{posted.json()['event_id']}").text
        downloads = [f["path"] for f in json.loads(result.rsplit("data: ", 1)[1])[4]["value"]]
        assert downloads and all(Path(p).is_relative_to(private.resolve()) for p in downloads)
    assert not private.exists() or not any(private.iterdir())
    assert list(system_tmp.iterdir()) == []
