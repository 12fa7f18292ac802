"""Voice profiles: a voice enrolled once (from a clip, or from a speaker of a past entry) names
that person in every recording diarized afterwards; deleted, it names no one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest
from fastapi.testclient import TestClient

from tingji.audio import load
from tingji.config import Settings
from tingji.server.app import create_app
from tingji.types import SpeakerTurn

from .conftest import A2, SR, shared_clip, write_wav


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("voices") / "data", models_dir=model_cache)
    with TestClient(create_app(settings, ui=False)) as client:
        yield client


def _labels(http: TestClient, path: Path, reference: list[SpeakerTurn]) -> dict[str, set[str]]:
    """Per reference speaker, the labels its segments got (and the entry's id)."""
    with path.open("rb") as audio:
        body = http.post(
            "/api/transcriptions",
            files={"file": ("talk.wav", audio, "audio/wav")},
            data={"language": "zh", "diarize": "true"},
        ).json()
    out: dict[str, set[str]] = {"id": {str(body["id"])}}
    for seg in body["segments"]:
        turn = max(reference, key=lambda t: min(seg["end"], t.end) - max(seg["start"], t.start))
        out.setdefault(turn.speaker, set()).add(seg["speaker"])
    return out


def test_enrolled_voices_name_speakers_until_deleted(
    http: TestClient, talk: tuple[Path, list[SpeakerTurn]], tmp_path: Path
) -> None:
    path, reference = talk
    clip = write_wav(tmp_path / "zhang.wav", load(shared_clip(A2))[-int(3.5 * SR) :])
    with clip.open("rb") as audio:
        made = http.post(
            "/api/voices", data={"name": " 张老师 "}, files={"file": ("zhang.wav", audio)}
        )
    assert made.status_code == 201, made.text
    assert made.json()["name"] == "张老师" and made.json()["source"] == "zhang.wav"
    assert [v["name"] for v in http.get("/api/voices").json()] == ["张老师"]

    labels = _labels(http, path, reference)
    assert labels["A"] == {"张老师"} and labels["B"] <= {"S1", "S2"}

    # a speaker of that entry enrolled by name: B now has a name too
    entry_id = int(next(iter(labels["id"])))
    b_label = next(iter(labels["B"]))
    made = http.post(
        "/api/voices/from-entry", json={"entry_id": entry_id, "speaker": b_label, "name": "李老师"}
    )
    assert made.status_code == 201, made.text
    assert made.json()["source"] == f"entry {entry_id}, {b_label}"
    labels = _labels(http, path, reference)
    assert labels["A"] == {"张老师"} and labels["B"] == {"李老师"}
    # the OpenAI endpoint keeps enrolled names too (letters only for unknown voices)
    sdk = openai.OpenAI(base_url="http://testserver/v1", api_key="x", http_client=http)
    with path.open("rb") as audio:
        result = sdk.audio.transcriptions.create(
            model="whisper-1", file=audio, language="zh", response_format="diarized_json"
        )
    assert {s.speaker for s in result.segments} == {"张老师", "李老师"}

    assert http.delete("/api/voices/张老师").status_code == 200
    assert http.delete("/api/voices/李老师").status_code == 200
    assert http.get("/api/voices").json() == []
    labels = _labels(http, path, reference)
    assert labels["A"] | labels["B"] == {"S1", "S2"}


def test_bad_enrolments_are_refused(http: TestClient, tmp_path: Path) -> None:
    short = write_wav(tmp_path / "short.wav", load(shared_clip(A2))[:SR])
    with short.open("rb") as audio:
        answer = http.post("/api/voices", data={"name": "x"}, files={"file": ("s.wav", audio)})
    assert answer.status_code == 400 and "3 s" in answer.json()["error"]["message"]
    answer = http.post(
        "/api/voices", data={"name": "x"}, files={"file": ("n.wav", b"not audio at all")}
    )
    assert answer.status_code == 400
    silence = write_wav(tmp_path / "silence.wav", np.zeros(5 * SR, np.float32))
    with silence.open("rb") as audio:
        answer = http.post("/api/voices", data={"name": "\u0007"}, files={"file": ("z.wav", audio)})
    assert answer.status_code == 400
    answer = http.post(
        "/api/voices/from-entry", json={"entry_id": 424242, "speaker": "S1", "name": "x"}
    )
    assert answer.status_code == 404
    assert http.delete("/api/voices/nobody").status_code == 404
    assert http.get("/api/voices").json() == []
