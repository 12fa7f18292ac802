"""The REST API driven through ``create_app(settings)`` with the real embedded model.

One app (and so one loaded model) serves the module; tests that change settings (upload limit,
API keys) get an app of their own on their own data directory.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import platform
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tingji.config import Settings
from tingji.server.app import create_app

from .conftest import ENGINES, engine_settings, shared_clip, stored_audio

MEETING = "zh/funasr/asr_example_zh.wav"  # 欢迎大家来体验达摩院推出的语音识别模型, 5.5 s
ENGLISH = "en/speechio/POD1000000004_S0000051.wav"  # BUT WHAT KIND OF BUSINESS, 2.1 s
SHORT = "zh/speechio/e5oipIfM49I__20190201_CCTV_1.wav"  # 各位观众晚上好, 1.3 s
SONG = "zh/fireredasr/IT0011W0001.wav"  # 换一首歌, 2.0 s

SRT_TIME = r"\d\d:\d\d:\d\d,\d{3}"
SRT_BLOCK = re.compile(rf"^(\d+)\n({SRT_TIME}) --> ({SRT_TIME})\n(\S.*)$", re.S)
STORED_NAME = re.compile(r"\d{8}-[0-9a-f]{32}")


def _seconds(stamp: str) -> float:
    hms, millis = stamp.split(",")
    h, m, s = (int(x) for x in hms.split(":"))
    return h * 3600 + m * 60 + s + int(millis) / 1000


def parse_srt(text: str) -> list[tuple[int, float, float, str]]:
    """Cues of an SRT document; fails on anything that is not well-formed SRT."""
    cues = []
    for block in text.strip().split("\n\n"):
        match = SRT_BLOCK.match(block)
        assert match, f"not an SRT cue: {block!r}"
        number, start, end, body = match.groups()
        cues.append((int(number), _seconds(start), _seconds(end), body))
    assert [c[0] for c in cues] == list(range(1, len(cues) + 1))
    assert all(start < end for _, start, end, _ in cues)
    return cues


def _no_traceback(response: httpx.Response) -> None:
    response.read()
    assert b"Traceback" not in response.content, response.text


@dataclass
class Api:
    client: TestClient
    settings: Settings

    @property
    def audio_files(self) -> list[str]:
        return stored_audio(self.settings)

    def upload(self, clip: str, name: str, **form: str) -> httpx.Response:
        data = shared_clip(clip).read_bytes()
        return self.client.post(
            "/api/transcriptions", files={"file": (name, data, "audio/wav")}, data=form
        )


def _app(settings: Settings) -> TestClient:
    client = TestClient(create_app(settings, ui=False))
    client.event_hooks = {"request": [], "response": [_no_traceback]}
    return client


@pytest.fixture(scope="module", params=ENGINES)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, model_cache: Path
) -> Iterator[Api]:
    """A server with a history on each engine."""
    settings = engine_settings(request, tmp_path_factory.mktemp("api") / "data", model_cache)
    with _app(settings) as client:
        yield Api(client, settings)


@pytest.fixture(scope="module")
def meeting(api: Api) -> tuple[dict[str, Any], bytes]:
    """A Mandarin clip uploaded as 会议.wav with every kind of option set."""
    response = api.upload(
        MEETING, "会议.wav", language="zh", hotwords="达摩院", itn="true", script="traditional"
    )
    assert response.status_code == 200, response.text
    return response.json(), shared_clip(MEETING).read_bytes()


@pytest.fixture(scope="module")
def english(api: Api) -> dict[str, Any]:
    response = api.upload(ENGLISH, "podcast.wav", language="en")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- recognition ---------------------------------------------------------------------------------
def test_transcription_has_every_field(meeting: tuple[dict[str, Any], bytes]) -> None:
    body, _ = meeting
    assert set(body) >= {
        "id",
        "name",
        "text",
        "language",
        "duration",
        "processing_time",
        "real_time_factor",
        "speed",
        "model",
        "segments",
        "replacements",
    }
    assert isinstance(body["id"], int) and body["id"] > 0
    assert body["name"] == "会议.wav"
    assert body["language"] == "zh"
    assert body["duration"] == pytest.approx(5.547, abs=0.05)
    assert body["processing_time"] > 0
    assert body["real_time_factor"] == pytest.approx(
        body["processing_time"] / body["duration"], rel=0.02, abs=0.002
    )
    assert body["speed"] == pytest.approx(body["duration"] / body["processing_time"], rel=0.02)
    model = body["model"]
    assert model["backend"] == "whisper"
    assert "base" in model["name"]
    assert model["device"] in ("cpu", "cuda")
    assert model["compute_type"]
    assert body["segments"], body
    for segment in body["segments"]:
        assert set(segment) >= {"id", "start", "end", "text"}
        assert 0 <= segment["start"] < segment["end"] <= body["duration"] + 0.1
    assert [s["id"] for s in body["segments"]] == list(range(len(body["segments"])))
    assert "".join(s["text"] for s in body["segments"]) == body["text"]
    for replacement in body["replacements"]:
        assert set(replacement) == {"segment_id", "original", "replacement"}


def test_transcription_applies_script_and_hotword(meeting: tuple[dict[str, Any], bytes]) -> None:
    text = meeting[0]["text"]
    assert "達摩院" in text  # the hotword, converted to traditional script
    assert "歡迎" in text
    simplified = set("欢来体验达识别语")
    assert not simplified & set(text), text


def test_entry_is_in_history_with_its_options(
    api: Api, meeting: tuple[dict[str, Any], bytes]
) -> None:
    body, _ = meeting
    entry = api.client.get(f"/api/history/{body['id']}").json()
    assert entry["id"] == body["id"]
    assert entry["name"] == "会议.wav"
    assert entry["text"] == body["text"]
    assert entry["language"] == "zh"
    assert entry["duration"] == body["duration"]
    assert entry["segments"] == body["segments"]
    assert entry["has_audio"] is True
    assert entry["job_id"] is None
    assert dt.datetime.fromisoformat(entry["created_at"]).tzinfo is not None
    options = entry["options"]
    assert options["language"] == "zh"
    assert options["script"] == "traditional"
    assert options["itn"] is True
    assert options["hotwords"] == ["达摩院"]


def test_entry_audio_is_the_upload(api: Api, meeting: tuple[dict[str, Any], bytes]) -> None:
    body, uploaded = meeting
    response = api.client.get(f"/api/history/{body['id']}/audio")
    assert response.status_code == 200
    assert response.content == uploaded


def test_entry_export_srt(api: Api, meeting: tuple[dict[str, Any], bytes]) -> None:
    body, _ = meeting
    response = api.client.get(f"/api/history/{body['id']}/export", params={"format": "srt"})
    assert response.status_code == 200, response.text
    cues = parse_srt(response.text)
    assert "".join(c[3] for c in cues) == body["text"]
    assert cues[0][1] == pytest.approx(body["segments"][0]["start"], abs=0.001)
    disposition = response.headers["content-disposition"]
    assert "filename*=UTF-8''%E4%BC%9A%E8%AE%AE.srt" in disposition  # 会议.srt


def test_entry_export_rejects_unknown_format(
    api: Api, meeting: tuple[dict[str, Any], bytes]
) -> None:
    response = api.client.get(f"/api/history/{meeting[0]['id']}/export?format=pdf")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_option"


# -- history search --------------------------------------------------------------------------------
def _search(api: Api, **params: Any) -> dict[str, Any]:
    response = api.client.get("/api/history", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _ids(found: dict[str, Any]) -> set[int]:
    return {item["id"] for item in found["items"]}


def test_search_finds_chinese_substrings(api: Api, meeting: tuple[dict[str, Any], bytes]) -> None:
    body, _ = meeting
    text = body["text"]
    at = text.index("達摩院")
    for query in (text[at : at + 2], text[at : at + 3], text[at : at + 4]):
        found = _search(api, q=query)
        assert body["id"] in _ids(found), (query, found)
        item = next(i for i in found["items"] if i["id"] == body["id"])
        assert item["text"] == text
        assert "segments" not in item  # the list view is short
    assert body["id"] in _ids(_search(api, q="会议"))  # the file name, by LIKE
    assert body["id"] in _ids(_search(api, q="会议.wav"))  # and by the trigram index


def test_search_for_a_missing_word_finds_nothing(
    api: Api, meeting: tuple[dict[str, Any], bytes]
) -> None:
    for query in ("不存在的词", "无此", "%", '"達摩'):
        found = _search(api, q=query)
        assert (found["total"], found["items"]) == (0, []), query


def test_search_by_language(
    api: Api, meeting: tuple[dict[str, Any], bytes], english: dict[str, Any]
) -> None:
    assert english["language"] == "en"
    zh = _search(api, language="zh", page_size=200)
    en = _search(api, language="en", page_size=200)
    assert meeting[0]["id"] in _ids(zh) and english["id"] not in _ids(zh)
    assert english["id"] in _ids(en) and meeting[0]["id"] not in _ids(en)
    assert {i["language"] for i in en["items"]} == {"en"}
    assert _search(api, language="fr")["total"] == 0


def test_search_by_date(api: Api, meeting: tuple[dict[str, Any], bytes]) -> None:
    entry = meeting[0]["id"]
    today = dt.datetime.now(dt.UTC).date()
    yesterday, tomorrow = (
        (today - dt.timedelta(days=1)).isoformat(),
        (today + dt.timedelta(days=1)).isoformat(),
    )
    hour_ago = str(int(time.time() - 3600))
    assert entry in _ids(_search(api, since=yesterday, until=tomorrow))
    assert entry in _ids(_search(api, since=hour_ago))
    assert entry in _ids(_search(api, since=f"{yesterday}T00:00:00+08:00"))
    assert _search(api, since=tomorrow)["total"] == 0
    assert _search(api, until=yesterday)["total"] == 0
    assert _search(api, until=hour_ago)["total"] == 0
    bad = api.client.get("/api/history", params={"since": "last tuesday"})
    assert bad.status_code == 400
    assert "since" in bad.json()["error"]["message"]


def test_history_pages(
    api: Api, meeting: tuple[dict[str, Any], bytes], english: dict[str, Any]
) -> None:
    everything = _search(api, page_size=200)
    total = everything["total"]
    assert total >= 2 and total == len(everything["items"])
    created = [i["created_at"] for i in everything["items"]]
    assert created == sorted(created, reverse=True)  # newest first
    seen = []
    for page in range(1, total + 1):
        found = _search(api, page=page, page_size=1)
        assert (found["total"], found["page"], found["page_size"]) == (total, page, 1)
        assert len(found["items"]) == 1
        seen.append(found["items"][0]["id"])
    assert seen == [i["id"] for i in everything["items"]]
    assert _search(api, page=total + 1, page_size=1)["items"] == []
    assert api.client.get("/api/history?page=0").status_code == 422
    assert api.client.get("/api/history?page_size=201").status_code == 422


def test_history_csv_export(api: Api, meeting: tuple[dict[str, Any], bytes]) -> None:
    body, _ = meeting
    response = api.client.get("/api/history/export.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == [
        "id",
        "created_at",
        "name",
        "language",
        "duration",
        "processing_time",
        "model",
        "device",
        "text",
    ]
    mine = [r for r in rows[1:] if r[0] == str(body["id"])]
    assert len(mine) == 1
    row = mine[0]
    assert row[2:4] == ["会议.wav", "zh"]
    assert float(row[4]) == pytest.approx(body["duration"], abs=0.01)
    assert row[8] == body["text"]
    filtered = api.client.get("/api/history/export.csv", params={"q": "不存在的词"})
    assert list(csv.reader(io.StringIO(filtered.content.decode("utf-8-sig")))) == [rows[0]]


# -- deleting --------------------------------------------------------------------------------------
def test_delete_entry_removes_its_audio(api: Api) -> None:
    response = api.upload(SHORT, "victim.wav", language="zh")
    assert response.status_code == 200
    entry = response.json()["id"]
    before = set(api.audio_files)
    assert api.client.get(f"/api/history/{entry}/audio").status_code == 200
    assert api.client.delete(f"/api/history/{entry}").json() == {"deleted": 1}
    assert api.client.get(f"/api/history/{entry}").status_code == 404
    assert api.client.get(f"/api/history/{entry}/audio").status_code == 404
    gone = before - set(api.audio_files)
    assert len(gone) == 1, gone  # exactly this entry's stored file
    assert entry not in _ids(_search(api, q="victim"))
    again = api.client.delete(f"/api/history/{entry}")
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "not_found"


# -- errors ----------------------------------------------------------------------------------------
def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return error


def test_unsupported_type_is_415(api: Api) -> None:
    before = api.audio_files
    response = api.client.post(
        "/api/transcriptions", files={"file": ("notes.txt", b"hello", "text/plain")}
    )
    error = _error(response, 415, "unsupported_format")
    assert error["file"] == "notes.txt"
    assert ".txt" in error["message"]
    assert api.audio_files == before


def test_corrupt_audio_is_400_naming_the_client_file(api: Api) -> None:
    before = api.audio_files
    response = api.client.post(
        "/api/transcriptions",
        files={"file": ("录音.wav", b"RIFF\x00\x00garbage" * 200, "audio/wav")},
    )
    error = _error(response, 400, "bad_audio")
    assert error["file"] == "录音.wav"
    assert "录音.wav" in error["message"]
    assert str(api.settings.data_dir) not in response.text
    assert str(api.settings.data_dir.resolve()) not in response.text
    assert not STORED_NAME.search(response.text)  # nor the generated stored name
    assert api.audio_files == before  # the upload was not kept


def test_empty_file_is_400(api: Api) -> None:
    before = api.audio_files
    response = api.client.post("/api/transcriptions", files={"file": ("empty.wav", b"")})
    error = _error(response, 400, "bad_audio")
    assert error["file"] == "empty.wav"
    assert "empty" in error["message"]
    assert api.audio_files == before


def test_unknown_history_id_is_404(api: Api) -> None:
    for path in ("/api/history/987654", "/api/history/987654/audio", "/api/history/987654/export"):
        error = _error(api.client.get(path), 404, "not_found")
        assert "987654" in error["message"]
    _error(api.client.delete("/api/history/987654"), 404, "not_found")


@pytest.mark.parametrize("entry_id", [2**63, 10**30])
def test_ids_beyond_64_bits_are_404(api: Api, entry_id: int) -> None:
    for method, path in [
        ("GET", f"/api/history/{entry_id}"),
        ("DELETE", f"/api/history/{entry_id}"),
        ("GET", f"/api/history/{entry_id}/audio"),
        ("GET", f"/api/history/{entry_id}/export"),
    ]:
        response = api.client.request(method, path)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "not_found"
    response = api.client.post("/api/history/delete", json={"ids": [entry_id]})
    assert response.status_code == 200 and response.json() == {"deleted": 0}, response.text


def test_bad_language_is_400(api: Api) -> None:
    before = api.audio_files
    error = _error(api.upload(SHORT, "a.wav", language="klingon"), 400, "invalid_option")
    assert "klingon" in error["message"]
    assert api.audio_files == before


@pytest.mark.parametrize(
    "model",
    ["/etc/passwd", "../x", "../../models/whisper-base", "large-v3", "iic/SenseVoiceSmall"],
)
def test_model_not_offered_is_400_and_nothing_is_read(api: Api, model: str) -> None:
    before = api.audio_files
    error = _error(api.upload(SHORT, "a.wav", model=model), 400, "invalid_option")
    assert f"model '{model}' is not offered" in error["message"]
    assert "root:" not in error["message"]
    assert api.audio_files == before


def test_invalid_form_values_are_422(api: Api) -> None:
    error = _error(api.upload(SHORT, "a.wav", script="klingon"), 422, "invalid_request")
    assert "script" in error["message"]
    missing = api.client.post("/api/transcriptions", data={"language": "zh"})
    assert "file" in _error(missing, 422, "invalid_request")["message"]
    _error(api.upload(SHORT, "a.wav", beam_size="99"), 400, "invalid_option")


def test_missing_route_is_404_json(api: Api) -> None:
    _error(api.client.get("/api/nothing-here"), 404, "not_found")
    _error(api.client.get("/nothing"), 404, "not_found")
    _error(api.client.put("/api/history/1"), 405, "method_not_allowed")


def test_upload_over_the_limit_is_413(tmp_path: Path, model_cache: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", models_dir=model_cache, max_upload_mb=0.01)
    clip = shared_clip(MEETING).read_bytes()  # 177 kB, over the 10 kB limit
    with _app(settings) as client:
        # stopped while copying (the declared length is within the slack)
        response = client.post("/api/transcriptions", files={"file": ("会议.wav", clip)})
        error = _error(response, 413, "too_large")
        assert error["file"] == "会议.wav"
        # refused from Content-Length before the body is read
        big = client.post("/api/transcriptions", files={"file": ("big.wav", bytes(3 << 20))})
        _error(big, 413, "too_large")
        jobs = client.post("/api/jobs", files=[("files", ("a.wav", clip))])
        _error(jobs, 413, "too_large")
        assert client.get("/api/history").json()["total"] == 0
    audio = settings.audio_dir
    assert not audio.exists() or list(audio.iterdir()) == []


# -- API keys --------------------------------------------------------------------------------------
def test_api_keys(tmp_path: Path, model_cache: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", models_dir=model_cache, api_keys=["k1"])
    with _app(settings) as client:
        for path in ("/api/history", "/api/system", "/v1/models", "/api/jobs"):
            refused = client.get(path)
            assert refused.status_code == 401, path
            assert refused.headers["www-authenticate"] == "Bearer"
            assert refused.json()["error"]["code"] == "unauthorized"
            for headers in (
                {"Authorization": "Bearer k2"},
                {"X-API-Key": "k2"},
                {"Authorization": "k1"},
                {"Authorization": "Bearer "},
            ):
                assert client.get(path, headers=headers).status_code == 401, (path, headers)
            assert client.get(path, headers={"Authorization": "Bearer k1"}).status_code == 200
            assert client.get(path, headers={"X-API-Key": "k1"}).status_code == 200
        posted = client.post(
            "/api/transcriptions", files={"file": ("a.wav", shared_clip(SHORT).read_bytes())}
        )
        assert posted.status_code == 401
        assert client.get("/healthz").status_code == 200
        assert client.get("/healthz").json()["status"] == "ok"
    assert not settings.audio_dir.exists() or list(settings.audio_dir.iterdir()) == []


# -- system ----------------------------------------------------------------------------------------
def test_system_and_release_memory(api: Api, meeting: tuple[dict[str, Any], bytes]) -> None:
    system = api.client.get("/api/system").json()
    assert system["device"] == ("cuda" if system["cuda_devices"] else "cpu")
    assert system["cpu_cores"] == os.cpu_count()
    assert system["ram_total_mb"] > 256
    assert 0 < system["ram_available_mb"] <= system["ram_total_mb"]
    assert system["python"] == platform.python_version()
    assert system["queue_length"] == 0
    assert system["default_model"] == "base"
    loaded = system["loaded_models"]
    assert [m["backend"] for m in loaded] == ["whisper"]
    assert loaded[0]["name"] == meeting[0]["model"]["name"]

    released = api.client.post("/api/system/release-memory").json()
    assert [m["name"] for m in released["unloaded"]] == [loaded[0]["name"]]
    assert released["rss_before_mb"] > 0 and released["rss_after_mb"] > 0
    assert api.client.get("/api/system").json()["loaded_models"] == []
    assert api.client.post("/api/system/release-memory").json()["unloaded"] == []

    again = api.upload(SONG, "song.wav", language="zh")  # loads the model again
    assert again.status_code == 200, again.text
    assert "一首歌" in again.json()["text"]
    assert len(api.client.get("/api/system").json()["loaded_models"]) == 1


def test_bulk_delete(api: Api, english: dict[str, Any]) -> None:
    song = _search(api, q="song.wav")["items"]
    assert len(song) == 1
    ids = [english["id"], song[0]["id"]]
    before = set(api.audio_files)
    response = api.client.post("/api/history/delete", json={"ids": [*ids, 987654]})
    assert response.json() == {"deleted": 2}
    for entry in ids:
        assert api.client.get(f"/api/history/{entry}").status_code == 404
    assert len(before - set(api.audio_files)) == 2
    assert api.client.post("/api/history/delete", json={"ids": []}).status_code == 422


def test_docs_and_openapi(api: Api) -> None:
    docs = api.client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    schema = api.client.get("/openapi.json").json()
    for path in (
        "/api/transcriptions",
        "/v1/audio/transcriptions",
        "/v1/models",
        "/api/jobs",
        "/api/jobs/{job_id}/events",
        "/api/history",
        "/api/history/export.csv",
        "/api/system",
        "/api/system/release-memory",
        "/healthz",
    ):
        assert path in schema["paths"], path
