"""OpenAI-compatible speech-to-text: POST /v1/audio/transcriptions and GET /v1/models."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from tingji.engine.hotwords import parse_hotwords
from tingji.errors import OptionError
from tingji.formats import render
from tingji.server import logs
from tingji.server.deps import Service, store
from tingji.server.voices import known_voices
from tingji.types import Transcript

router = APIRouter(prefix="/v1", tags=["openai"])

_LANGUAGE_NAMES = {
    "zh": "chinese",
    "en": "english",
    "ja": "japanese",
    "ko": "korean",
    "yue": "cantonese",
    "fr": "french",
    "de": "german",
    "es": "spanish",
    "ru": "russian",
    "it": "italian",
    "pt": "portuguese",
}


def _verbose(transcript: Transcript, task: str) -> dict[str, Any]:
    return {
        "task": task,
        "language": _LANGUAGE_NAMES.get(transcript.language, transcript.language),
        "duration": round(transcript.duration, 3),
        "text": transcript.text,
        "segments": [
            {
                "id": s.id,
                "seek": 0,
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": s.avg_logprob if s.avg_logprob is not None else 0.0,
                "compression_ratio": 0.0,
                "no_speech_prob": s.no_speech_prob if s.no_speech_prob is not None else 0.0,
            }
            for s in transcript.segments
        ],
    }


def _diarized(transcript: Transcript, known: set[str]) -> dict[str, Any]:
    """OpenAI's ``TranscriptionDiarized``: speakers are the known names, else A, B, …"""
    letters: dict[str, str] = {}
    for seg in transcript.segments:
        speaker = seg.speaker or ""
        if speaker not in known and speaker not in letters:
            letters[speaker] = _letter(len(letters))
    return {
        "task": "transcribe",
        "duration": round(transcript.duration, 3),
        "text": transcript.text,
        "segments": [
            {
                "id": f"seg_{s.id}",
                "type": "transcript.text.segment",
                "start": s.start,
                "end": s.end,
                "speaker": s.speaker if s.speaker in known else letters[s.speaker or ""],
                "text": s.text,
            }
            for s in transcript.segments
        ],
        "usage": {"type": "duration", "seconds": round(transcript.duration, 3)},
    }


def _letter(n: int) -> str:
    """A, B, … Z, AA, AB, …"""
    out = ""
    n += 1
    while n:
        n, rest = divmod(n - 1, 26)
        out = chr(65 + rest) + out
    return out


@dataclass
class _Request:
    model: str
    language: str | None
    prompt: str | None
    hotwords: list[str]
    itn: bool | None
    task: Literal["transcribe", "translate"]
    diarize: bool = False
    names: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)


def _run(service: Service, file: UploadFile, request: _Request) -> Transcript:
    chosen = service.check_model(request.model)
    options = service.options(
        language=(request.language or "").strip().lower() or service.settings.language,
        task=request.task,
        initial_prompt=request.prompt or None,
        hotwords=tuple(request.hotwords),
        diarize=request.diarize,
    )
    if request.itn is not None:
        options = replace(options, itn=request.itn)
    voices = known_voices(service, request.names, request.references) if request.diarize else {}
    stored = store(service, file)
    try:
        saved = service.recognise_and_save(stored, options, model=chosen, voices=voices)
    except BaseException:  # a failed recognition keeps no upload
        service.discard_upload(stored)
        raise
    logs.note_transcript(saved.transcript)
    return saved.transcript


def _respond(
    transcript: Transcript, response_format: str, task: str, known: set[str] | None = None
) -> Response:
    if response_format == "diarized_json":
        return JSONResponse(_diarized(transcript, known or set()))
    if response_format == "text":
        return PlainTextResponse(transcript.text + "\n")
    if response_format in ("srt", "vtt"):
        return PlainTextResponse(render(transcript, response_format))
    if response_format == "verbose_json":
        return JSONResponse(_verbose(transcript, task))
    return JSONResponse({"text": transcript.text})


ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]
TranscriptionFormat = Literal["json", "text", "srt", "vtt", "verbose_json", "diarized_json"]


@router.post("/audio/transcriptions")
def transcriptions(
    service: Service,
    file: Annotated[UploadFile, File()],
    model: Annotated[str, Form()] = "whisper-1",
    language: Annotated[str | None, Form()] = None,
    prompt: Annotated[str | None, Form()] = None,
    response_format: Annotated[TranscriptionFormat, Form()] = "json",
    temperature: Annotated[float | None, Form()] = None,
    timestamp_granularities: Annotated[
        list[Literal["segment", "word"]] | None, Form(alias="timestamp_granularities[]")
    ] = None,
    keywords: Annotated[
        list[str] | None, Form(alias="keywords[]", description="terms to favour (hotwords)")
    ] = None,
    known_speaker_names: Annotated[
        list[str] | None,
        Form(alias="known_speaker_names[]", description="with diarized_json: up to 4 names"),
    ] = None,
    known_speaker_references: Annotated[
        list[str] | None,
        Form(
            alias="known_speaker_references[]",
            description="data URLs of 2–10 s clips, one per name",
        ),
    ] = None,
    chunking_strategy: Annotated[str | None, Form()] = None,
    hotwords: Annotated[str | None, Form(description="tingji extra: terms to favour")] = None,
    itn: Annotated[
        bool | None, Form(description="tingji extra: inverse text normalisation")
    ] = None,
) -> Response:
    """OpenAI's transcription endpoint. ``response_format=diarized_json`` tells speakers
    apart (named after ``known_speaker_names[]`` where their voices match the references);
    ``keywords[]`` are hotwords; ``hotwords`` and ``itn`` are tingji's extras."""
    terms = [*parse_hotwords(hotwords or ""), *parse_hotwords("\n".join(keywords or []))]
    names = known_speaker_names or []
    if (names or known_speaker_references) and response_format != "diarized_json":
        raise OptionError("known speakers need response_format=diarized_json")
    request = _Request(
        model,
        language,
        prompt,
        list(dict.fromkeys(terms)),
        itn,
        "transcribe",
        diarize=response_format == "diarized_json",
        names=names,
        references=known_speaker_references or [],
    )
    transcript = _run(service, file, request)
    # named speakers keep their names: the request's known speakers and the enrolled voices
    known = {" ".join(n.split()) for n in names} | {v.name for v in service.voices()}
    return _respond(transcript, response_format, "transcribe", known)


@router.post("/audio/translations")
def translations(
    service: Service,
    file: Annotated[UploadFile, File()],
    model: Annotated[str, Form()] = "whisper-1",
    prompt: Annotated[str | None, Form()] = None,
    response_format: Annotated[ResponseFormat, Form()] = "json",
    temperature: Annotated[float | None, Form()] = None,
) -> Response:
    """OpenAI's translation endpoint: English text from speech in any language."""
    transcript = _run(service, file, _Request(model, None, prompt, [], None, "translate"))
    return _respond(transcript, response_format, "translate")


@router.get("/models")
def models(service: Service) -> dict[str, Any]:
    now = int(time.time())
    names = ["whisper-1", *service.offered_models()]
    return {
        "object": "list",
        "data": [{"id": n, "object": "model", "created": now, "owned_by": "tingji"} for n in names],
    }
