"""Engine options as multipart form fields, shared by the recognition and job routes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Literal

from fastapi import Form

from tingji.engine.hotwords import parse_hotwords
from tingji.engine.pipeline import check_speaker_options
from tingji.errors import NotFoundError, OptionError
from tingji.service import Tingji
from tingji.types import TranscribeOptions


@dataclass
class OptionFields:
    language: str | None
    task: Literal["transcribe", "translate"]
    hotwords: str | None
    hotword_list: str | None
    itn: bool | None
    script: Literal["simplified", "traditional", "original"] | None
    punctuate: bool
    vad: bool
    max_segment: float | None
    beam_size: int | None
    model: str | None
    diarize: bool = False
    speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None

    def build(self, service: Tingji) -> tuple[TranscribeOptions, str]:
        base = service.options()
        terms = parse_hotwords(self.hotwords or "")
        if self.hotword_list:
            lists = service.history.hotword_lists()
            if self.hotword_list not in lists:
                raise NotFoundError(f"no hotword list named '{self.hotword_list}'")
            terms = list(dict.fromkeys([*lists[self.hotword_list], *terms]))
        vad = replace(base.vad, enabled=self.vad)
        if self.max_segment is not None:
            if not 1 < self.max_segment <= 600:
                raise OptionError("max_segment must be between 1 and 600 seconds")
            vad = replace(vad, max_segment_s=self.max_segment)
        if self.beam_size is not None and not 1 <= self.beam_size <= 20:
            raise OptionError("beam_size must be between 1 and 20")
        language = (self.language or "").strip().lower() or None
        if language == "auto":
            language = None
        options = replace(
            base,
            language=language or base.language,
            task=self.task,
            hotwords=tuple(terms),
            itn=base.itn if self.itn is None else self.itn,
            script=self.script or base.script,
            punctuate=self.punctuate,
            beam_size=self.beam_size,
            vad=vad,
            diarize=self.diarize
            or any(v is not None for v in (self.speakers, self.min_speakers, self.max_speakers)),
            speakers=self.speakers,
            min_speakers=self.min_speakers,
            max_speakers=self.max_speakers,
        )
        check_speaker_options(options)
        return options, service.check_model(self.model)


def option_fields(
    language: Annotated[
        str | None, Form(description="zh, en, ja, yue …; empty or auto: detect")
    ] = None,
    task: Annotated[Literal["transcribe", "translate"], Form()] = "transcribe",
    hotwords: Annotated[str | None, Form(description="terms, comma or newline separated")] = None,
    hotword_list: Annotated[str | None, Form(description="name of a saved hotword list")] = None,
    itn: Annotated[bool | None, Form(description="inverse text normalisation")] = None,
    script: Annotated[Literal["simplified", "traditional", "original"] | None, Form()] = None,
    punctuate: Annotated[bool, Form()] = True,
    vad: Annotated[bool, Form(description="split at pauses")] = True,
    max_segment: Annotated[float | None, Form(description="seconds")] = None,
    beam_size: Annotated[int | None, Form()] = None,
    model: Annotated[str | None, Form(description="one of GET /v1/models")] = None,
    diarize: Annotated[bool, Form(description="tell speakers apart (who said what)")] = False,
    speakers: Annotated[int | None, Form(description="number of speakers, if known")] = None,
    min_speakers: Annotated[int | None, Form()] = None,
    max_speakers: Annotated[int | None, Form()] = None,
) -> OptionFields:
    return OptionFields(
        language,
        task,
        hotwords,
        hotword_list,
        itn,
        script,
        punctuate,
        vad,
        max_segment,
        beam_size,
        model,
        diarize,
        speakers,
        min_speakers,
        max_speakers,
    )
