"""OpenAI-compatible speech-to-text: POST /v1/audio/transcriptions and GET /v1/models."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from tingji.engine.hotwords import parse_hotwords
from tingji.formats import render
from tingji.server.deps import Service, store
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


def _run(
    service: Service,
    file: UploadFile,
    model: str,
    language: str | None,
    prompt: str | None,
    hotwords: str | None,
    itn: bool | None,
    task: Literal["transcribe", "translate"],
) -> Transcript:
    chosen = service.check_model(model)
    options = service.options(
        language=(language or "").strip().lower() or service.settings.language,
        task=task,
        initial_prompt=prompt or None,
        hotwords=tuple(parse_hotwords(hotwords or "")),
    )
    if itn is not None:
        options = replace(options, itn=itn)
    stored = store(service, file)
    try:
        return service.recognise_and_save(stored, options, model=chosen).transcript
    except BaseException:  # a failed recognition keeps no upload
        service.discard_upload(stored)
        raise


def _respond(transcript: Transcript, response_format: str, task: str) -> Response:
    if response_format == "text":
        return PlainTextResponse(transcript.text + "\n")
    if response_format in ("srt", "vtt"):
        return PlainTextResponse(render(transcript, response_format))
    if response_format == "verbose_json":
        return JSONResponse(_verbose(transcript, task))
    return JSONResponse({"text": transcript.text})


ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]


@router.post("/audio/transcriptions")
def transcriptions(
    service: Service,
    file: Annotated[UploadFile, File()],
    model: Annotated[str, Form()] = "whisper-1",
    language: Annotated[str | None, Form()] = None,
    prompt: Annotated[str | None, Form()] = None,
    response_format: Annotated[ResponseFormat, Form()] = "json",
    temperature: Annotated[float | None, Form()] = None,
    timestamp_granularities: Annotated[
        list[Literal["segment", "word"]] | None, Form(alias="timestamp_granularities[]")
    ] = None,
    hotwords: Annotated[str | None, Form(description="tingji extra: terms to favour")] = None,
    itn: Annotated[
        bool | None, Form(description="tingji extra: inverse text normalisation")
    ] = None,
) -> Response:
    """OpenAI's transcription endpoint; ``hotwords`` and ``itn`` are tingji's extras."""
    transcript = _run(service, file, model, language, prompt, hotwords, itn, "transcribe")
    return _respond(transcript, response_format, "transcribe")


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
    transcript = _run(service, file, model, None, prompt, None, None, "translate")
    return _respond(transcript, response_format, "translate")


@router.get("/models")
def models(service: Service) -> dict[str, Any]:
    now = int(time.time())
    names = ["whisper-1", *service.offered_models()]
    return {
        "object": "list",
        "data": [{"id": n, "object": "model", "created": now, "owned_by": "tingji"} for n in names],
    }
