"""Who said what, end to end: the service, the CLI, the REST and job APIs and the OpenAI SDK's
``diarized_json`` with known speakers, on a conversation of real speech by two people."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from tingji.audio import load
from tingji.config import Settings
from tingji.server.app import create_app
from tingji.service import Tingji
from tingji.types import Segment, SpeakerTurn

from .conftest import A1, A2, SR, shared_clip, wait_for_job, write_wav


def _words(segments: list[Segment]) -> str:
    return "".join(ch for s in segments for ch in s.text if ch.isalnum())


def _same_speaker_inside(segments: list[dict[str, object]], reference: list[SpeakerTurn]) -> None:
    """Each segment is mostly inside one reference turn, segments of one speaker share a
    label, and the two speakers' labels differ; every turn has text."""
    label_of: dict[str, str] = {}
    heard = set()
    for seg in segments:
        start, end = float(seg["start"]), float(seg["end"])  # type: ignore[arg-type]
        turn = max(reference, key=lambda t: min(end, t.end) - max(start, t.start))
        inside = min(end, turn.end) - max(start, turn.start)
        assert inside >= 0.6 * (end - start), (seg, turn)
        heard.add(turn)
        label = str(seg["speaker"])
        assert label_of.setdefault(turn.speaker, label) == label, (seg, label_of)
    assert len(set(label_of.values())) == len(label_of) == 2
    assert heard == set(reference), segments


def test_a_job_file_cancelled_while_its_speakers_are_told_apart_stops_there(
    service: Tingji, talk: tuple[Path, list[SpeakerTurn]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner's progress is asked while the diarizer works (no segment comes then), so a
    cancel stops the file there: nothing is recognised after it."""
    from tingji.jobs.runner import JobCancelled

    path, _ = talk
    asked: list[float] = []
    backend = service.backend()
    decoded: list[int] = []
    decode_many = backend.decode_many

    def counted(clips: Any, options: Any) -> Any:
        decoded.append(len(clips))
        return decode_many(clips, options)

    monkeypatch.setattr(backend, "decode_many", counted)

    def progress(done: float, total: float | None) -> bool:
        asked.append(done)
        return len(asked) == 1  # cancelled after the file started

    with pytest.raises(JobCancelled):
        service._recognise_job_file(
            path, service.options(language="zh", diarize=True), service.settings.model, progress
        )
    assert asked == [0.0, 0.0], asked  # the second ask came from inside the diarizer
    assert decoded == []  # and nothing was recognised after it


def test_service_labels_segments_and_keeps_the_text(
    service: Tingji, talk: tuple[Path, list[SpeakerTurn]]
) -> None:
    path, reference = talk
    plain = service.transcribe(str(path), service.options(language="zh"))
    told = service.transcribe(str(path), service.options(language="zh", diarize=True))
    # the same words; a segment cut at a change of speaker may gain a closing ，
    assert _words(told.segments) == _words(plain.segments)
    assert {s.speaker for s in plain.segments} == {None} and not plain.speakers
    _same_speaker_inside([vars(s) for s in told.segments], reference)
    assert {t.speaker for t in told.speakers} == {"S1", "S2"}
    # B's long turn and A's turns are never one segment: a segment reaches into another
    # turn by at most the alignment's slack
    for seg in told.segments:
        spans = sorted(min(seg.end, t.end) - max(seg.start, t.start) for t in reference)
        assert spans[-2] <= 1.0, (seg, spans)


def test_bad_speaker_counts_are_refused_before_work(service: Tingji) -> None:
    from tingji.errors import OptionError

    for options in (
        service.options(diarize=True, speakers=0),
        service.options(diarize=True, speakers=21),
        service.options(diarize=True, min_speakers=3, max_speakers=2),
        service.options(speakers=2),  # without diarize
    ):
        with pytest.raises(OptionError):
            service.start("/nonexistent.wav", options)


def test_cli_writes_speakers(
    talk: tuple[Path, list[SpeakerTurn]], tmp_path: Path, model_cache: Path
) -> None:
    from tingji.engine.models import ensure_embedded_model

    ensure_embedded_model(model_cache)
    path, reference = talk
    out = tmp_path / "out"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(Path.home()),
        "TINGJI_DATA_DIR": str(tmp_path / "data"),
        "TINGJI_MODELS_DIR": str(model_cache),
        "HF_HUB_OFFLINE": "1",
        "PYTHONIOENCODING": "utf-8",
    }
    done = subprocess.run(
        [sys.executable, "-m", "tingji.cli", "transcribe", str(path), "-l", "zh", "--diarize",
         "--speakers", "2", "-f", "srt,csv,rttm,json", "-o", str(out)],
        env=env, capture_output=True, text=True, encoding="utf-8", timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "talk.wav: 2 speakers (S1, S2)" in done.stderr
    rttm = (out / "talk.rttm").read_text(encoding="utf-8").splitlines()
    assert rttm and all(line.split()[:3] == ["SPEAKER", "talk", "1"] for line in rttm)
    assert {line.split()[7] for line in rttm} == {"S1", "S2"}
    assert all(len(line.split()) == 10 for line in rttm)
    srt = (out / "talk.srt").read_text(encoding="utf-8")
    assert "[S1] " in srt and "[S2] " in srt
    rows = list(csv.reader(io.StringIO((out / "talk.csv").read_text(encoding="utf-8"))))
    assert rows[0] == ["start", "end", "speaker", "text"]
    data = json.loads((out / "talk.json").read_text(encoding="utf-8"))
    _same_speaker_inside(data["segments"], reference)
    assert data["speakers"] and set(data["speakers"][0]) == {"start", "end", "speaker"}


# -- the servers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("who") / "data", models_dir=model_cache)
    with TestClient(create_app(settings, ui=False)) as client:
        yield client


def test_rest_diarizes_saves_and_exports(
    http: TestClient, talk: tuple[Path, list[SpeakerTurn]]
) -> None:
    path, reference = talk
    with path.open("rb") as audio:
        answer = http.post(
            "/api/transcriptions",
            files={"file": ("talk.wav", audio, "audio/wav")},
            data={"language": "zh", "diarize": "true"},
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    _same_speaker_inside(body["segments"], reference)
    assert {t["speaker"] for t in body["speakers"]} == {"S1", "S2"}
    entry = http.get(f"/api/history/{body['id']}").json()
    assert entry["speakers"] == body["speakers"]
    assert [s["speaker"] for s in entry["segments"]] == [s["speaker"] for s in body["segments"]]
    rttm = http.get(f"/api/history/{body['id']}/export", params={"format": "rttm"})
    assert rttm.status_code == 200, rttm.text
    assert len(rttm.text.splitlines()) == len(body["speakers"])


@pytest.mark.parametrize(
    "fields",
    [
        {"diarize": "true", "speakers": "0"},
        {"diarize": "true", "speakers": "99"},
        {"diarize": "true", "min_speakers": "4", "max_speakers": "2"},
        {"speakers": "2", "min_speakers": "1"},
    ],
)
def test_rest_refuses_bad_counts(http: TestClient, fields: dict[str, str]) -> None:
    clip = shared_clip(A1)
    with clip.open("rb") as audio:
        answer = http.post(
            "/api/transcriptions", files={"file": ("a.wav", audio, "audio/wav")}, data=fields
        )
    assert answer.status_code == 400, answer.text
    assert "speakers" in answer.json()["error"]["message"]


def test_job_diarizes_and_its_zip_has_rttm(
    http: TestClient, talk: tuple[Path, list[SpeakerTurn]]
) -> None:
    path, reference = talk
    with path.open("rb") as audio:
        created = http.post(
            "/api/jobs",
            files=[("files", ("talk.wav", audio, "audio/wav"))],
            data={"language": "zh", "diarize": "true", "speakers": "2"},
        )
    assert created.status_code == 201, created.text
    job = wait_for_job(http, created.json()["id"], timeout=300)
    assert job["status"] == "done", job
    assert job["options"]["diarize"] is True and job["options"]["speakers"] == 2
    entry = http.get(f"/api/history/{job['files'][0]['transcription_id']}").json()
    _same_speaker_inside(entry["segments"], reference)
    archive = zipfile.ZipFile(
        io.BytesIO(http.get(f"/api/jobs/{job['id']}/export?format=zip").content)
    )
    assert "talk.rttm" in archive.namelist()
    rows = list(
        csv.DictReader(io.StringIO(http.get(f"/api/jobs/{job['id']}/export").text.lstrip("\ufeff")))
    )
    assert {r["speaker"] for r in rows} == {"S1", "S2"}


def _data_url(path: Path) -> str:
    return "data:audio/wav;base64," + base64.b64encode(path.read_bytes()).decode()


def _sdk(http: TestClient) -> openai.OpenAI:
    return openai.OpenAI(
        base_url="http://testserver/v1", api_key="x", http_client=http, max_retries=0
    )


def test_openai_diarized_json_names_known_speakers(
    http: TestClient, talk: tuple[Path, list[SpeakerTurn]], tmp_path: Path
) -> None:
    path, reference = talk
    # the known voice: S0764's second sentence, its last 3.5 s (not the audio of the talk's
    # first turn)
    reference_clip = write_wav(tmp_path / "ref.wav", load(shared_clip(A2))[-int(3.5 * SR) :])
    with path.open("rb") as audio:
        result = _sdk(http).audio.transcriptions.create(
            model="whisper-1",
            file=audio,
            language="zh",
            response_format="diarized_json",
            known_speaker_names=["张老师"],
            known_speaker_references=[_data_url(reference_clip)],
        )
    assert isinstance(result, openai.types.audio.TranscriptionDiarized)
    assert result.task == "transcribe" and result.duration == pytest.approx(
        reference[-1].end, abs=0.8
    )
    segments = [s.model_dump() for s in result.segments]
    assert all(s["type"] == "transcript.text.segment" for s in segments)
    _same_speaker_inside(segments, reference)
    by_turn: dict[str, set[str]] = {}
    for seg in segments:
        turn = max(reference, key=lambda t: min(seg["end"], t.end) - max(seg["start"], t.start))
        by_turn.setdefault(turn.speaker, set()).add(seg["speaker"])
    assert by_turn["A"] == {"张老师"}  # the known voice, by name
    assert by_turn["B"] == {"A"}  # an unknown voice, lettered as OpenAI does


def test_openai_without_known_speakers_letters_them(
    http: TestClient, talk: tuple[Path, list[SpeakerTurn]]
) -> None:
    path, _ = talk
    with path.open("rb") as audio:
        result = _sdk(http).audio.transcriptions.create(
            model="whisper-1", file=audio, language="zh", response_format="diarized_json"
        )
    assert {s.speaker for s in result.segments} == {"A", "B"}


@pytest.mark.parametrize(
    ("names", "references", "expected"),
    [
        (["a", "b"], ["data:audio/wav;base64,AAAA"], "as many"),
        (["a"], ["https://example.com/a.wav"], "data URL"),
        (["a"], ["data:audio/wav;base64,!!!notbase64"], "base64"),
        (["a"], ["data:audio/wav;base64," + base64.b64encode(b"RIFF0000WAVE").decode()], "audio"),
        (["a", "b", "c", "d", "e"], ["data:audio/wav;base64,AAAA"] * 5, "at most 4"),
    ],
)
def test_openai_bad_references_are_refused(
    http: TestClient, names: list[str], references: list[str], expected: str
) -> None:
    clip = shared_clip(A1)
    with clip.open("rb") as audio, pytest.raises(openai.BadRequestError, match=expected):
        _sdk(http).audio.transcriptions.create(
            model="whisper-1",
            file=audio,
            response_format="diarized_json",
            known_speaker_names=names,
            known_speaker_references=references,
        )


def test_openai_reference_too_short_is_refused(http: TestClient, tmp_path: Path) -> None:
    short = write_wav(tmp_path / "short.wav", load(shared_clip(A2))[:SR])
    clip = shared_clip(A1)
    with clip.open("rb") as audio, pytest.raises(openai.BadRequestError, match="2–10 s"):
        _sdk(http).audio.transcriptions.create(
            model="whisper-1",
            file=audio,
            response_format="diarized_json",
            known_speaker_names=["a"],
            known_speaker_references=[_data_url(short)],
        )


def test_openai_keywords_are_hotwords(http: TestClient) -> None:
    clip = shared_clip("zh/funasr/asr_example_zh.wav")  # …体验达摩院推出的语音识别模型
    with clip.open("rb") as audio:
        result = _sdk(http).audio.transcriptions.create(
            model="whisper-1", file=audio, language="zh", keywords=["达摩院", "语音识别"]
        )
    assert "达摩院" in result.text and "语音识别" in result.text
    saved = http.get("/api/history", params={"q": "达摩院"}).json()["items"][0]
    options = http.get(f"/api/history/{saved['id']}").json()["options"]
    assert options["hotwords"] == ["达摩院", "语音识别"]


def test_rename_a_speaker_then_search_and_export_minutes(
    http: TestClient, talk: tuple[Path, list[SpeakerTurn]]
) -> None:
    import docx

    path, reference = talk
    body = _diarized(http, path, "周会.wav", speakers=2)
    entry_id = body["id"]
    first = body["segments"][0]["speaker"]  # A's label
    renamed = http.post(
        f"/api/history/{entry_id}/speakers", json={"speaker": first, "name": "王经理"}
    )
    assert renamed.status_code == 200, renamed.text
    entry = renamed.json()
    assert {s["speaker"] for s in entry["segments"]} == {"王经理", "S1" if first == "S2" else "S2"}
    assert "王经理" in {t["speaker"] for t in entry["speakers"]}
    assert http.get(f"/api/history/{entry_id}").json()["segments"] == entry["segments"]
    # the name is searchable, short (LIKE) and long (full-text) queries alike
    for query in ("王经理", "经理"):
        found = http.get("/api/history", params={"q": query}).json()["items"]
        assert entry_id in [item["id"] for item in found], query
    # every export uses it
    srt = http.get(f"/api/history/{entry_id}/export", params={"format": "srt"}).text
    assert "[王经理] " in srt
    rttm = http.get(f"/api/history/{entry_id}/export", params={"format": "rttm"}).text
    assert " 王经理 " in rttm
    markdown = http.get(f"/api/history/{entry_id}/export", params={"format": "md"})
    assert markdown.headers["content-type"].startswith("text/markdown")
    lines = markdown.text.splitlines()
    assert lines[0] == "# 周会"
    assert any(line.startswith("- 参与者：") and "王经理" in line for line in lines)
    turns = [line for line in lines if re.match(r"^\[\d\d:\d\d:\d\d\] ", line)]
    assert turns[0].startswith("[00:00:00] **王经理**：")
    assert len(turns) == 3  # A, B, A: consecutive segments of one speaker merged
    word = http.get(f"/api/history/{entry_id}/export", params={"format": "docx"})
    assert word.status_code == 200
    document = docx.Document(io.BytesIO(word.content))
    texts = [p.text for p in document.paragraphs]
    assert texts[0] == "周会"
    assert any(t.startswith("[00:00:00] 王经理：") for t in texts)
    assert sum(bool(re.match(r"^\[\d\d:\d\d:\d\d\] ", t)) for t in texts) == 3


def test_renaming_checks_its_input(http: TestClient, talk: tuple[Path, list[SpeakerTurn]]) -> None:
    path, _ = talk
    entry_id = _diarized(http, path, "t.wav")["id"]
    for body, status in (
        ({"speaker": "S9", "name": "x"}, 404),
        ({"speaker": "S1", "name": "   "}, 400),
        ({"speaker": "S1", "name": "a\u0007b"}, 400),
        ({"speaker": "S1", "name": "x" * 65}, 422),
    ):
        answer = http.post(f"/api/history/{entry_id}/speakers", json=body)
        assert answer.status_code == status, (body, answer.text)
    assert (
        http.post("/api/history/999999/speakers", json={"speaker": "S1", "name": "x"}).status_code
        == 404
    )
    assert http.get(f"/api/history/{entry_id}/export", params={"format": "pdf"}).status_code == 400


def test_correct_a_segment_then_search_export_and_put_it_back(
    http: TestClient, talk: tuple[Path, list[SpeakerTurn]]
) -> None:
    import docx

    path, _ = talk
    body = _diarized(http, path, "例会.wav", speakers=2)
    entry_id, recognised = body["id"], body["segments"]
    first, other = recognised[0]["speaker"], {"S1": "S2", "S2": "S1"}[recognised[0]["speaker"]]
    answer = http.patch(
        f"/api/history/{entry_id}/segments/0",
        json={"text": "  会议纪要由 王经理\n整理  ", "speaker": other},
    )
    assert answer.status_code == 200, answer.text
    entry = answer.json()
    assert entry["segments"][0]["text"] == "会议纪要由 王经理 整理"  # one line
    assert entry["segments"][0]["speaker"] == other
    assert entry["segments"][1:] == recognised[1:]
    assert entry["original_segments"] == recognised and entry["edited_at"]
    assert entry["text"].startswith("会议纪要由 王经理 整理")
    # the speaker turns follow: nobody but `other` talks inside the corrected segment
    start, end = recognised[0]["start"], recognised[0]["end"]
    inside = [t for t in entry["speakers"] if t["start"] < end - 0.01 and t["end"] > start + 0.01]
    assert {t["speaker"] for t in inside} == {other}
    assert http.get(f"/api/history/{entry_id}").json() == entry
    found = http.get("/api/history", params={"q": "会议纪要"}).json()["items"]
    assert [item["id"] for item in found] == [entry_id]
    srt = http.get(f"/api/history/{entry_id}/export", params={"format": "srt"}).text
    assert f"[{other}] 会议纪要由 王经理 整理" in srt
    document = docx.Document(
        io.BytesIO(http.get(f"/api/history/{entry_id}/export", params={"format": "docx"}).content)
    )
    assert any("会议纪要由 王经理 整理" in p.text for p in document.paragraphs)
    # put back: exactly the recognition again
    back = http.post(f"/api/history/{entry_id}/segments/0/revert").json()
    assert back["segments"] == recognised and back["original_segments"] is None
    assert back["text"] == body["text"]
    assert first in {t["speaker"] for t in back["speakers"]}
    assert http.get("/api/history", params={"q": "会议纪要"}).json()["items"] == []


def test_corrections_check_their_input(
    http: TestClient, talk: tuple[Path, list[SpeakerTurn]]
) -> None:
    path, _ = talk
    body = _diarized(http, path, "t.wav")
    entry_id = body["id"]
    for url, payload, status in (
        (f"/api/history/{entry_id}/segments/0", {}, 400),
        (f"/api/history/{entry_id}/segments/0", {"text": "   "}, 400),
        (f"/api/history/{entry_id}/segments/0", {"text": ""}, 422),
        (f"/api/history/{entry_id}/segments/0", {"text": "a\u0000b"}, 400),
        (f"/api/history/{entry_id}/segments/0", {"text": "字" * 2001}, 422),
        (f"/api/history/{entry_id}/segments/0", {"speaker": "a\u0007b"}, 400),
        (f"/api/history/{entry_id}/segments/-1", {"text": "x"}, 422),
        (f"/api/history/{entry_id}/segments/999", {"text": "x"}, 404),
        (f"/api/history/{entry_id}/segments/{2**70}", {"text": "x"}, 404),
        ("/api/history/999999/segments/0", {"text": "x"}, 404),
    ):
        answer = http.patch(url, json=payload)
        assert answer.status_code == status, (url, payload, answer.text)
        assert "Traceback" not in answer.text
    assert http.get(f"/api/history/{entry_id}").json()["segments"] == body["segments"]
    assert http.post(f"/api/history/{entry_id}/segments/999/revert").status_code == 404


def _diarized(http: TestClient, path: Path, name: str, speakers: int | None = None) -> Any:
    """The answer to recognising ``path`` (sent as ``name``) with its speakers told apart."""
    data = {"language": "zh", "diarize": "true"}
    if speakers:
        data["speakers"] = str(speakers)
    with path.open("rb") as audio:
        answer = http.post(
            "/api/transcriptions", files={"file": (name, audio, "audio/wav")}, data=data
        )
    assert answer.status_code == 200, answer.text
    return answer.json()
