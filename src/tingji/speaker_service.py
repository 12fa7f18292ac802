"""The facade's part about who said what: the diarizer, voice profiles, the names of the
speakers of saved entries and corrections of their segments. A mixin of
:class:`tingji.service.Tingji`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tingji import audio, edits
from tingji.config import Settings
from tingji.engine.diarize import MAX_SPEAKERS, Diarizer
from tingji.engine.pipeline import Diarize, Source
from tingji.errors import AudioError, NotFoundError, OptionError
from tingji.jobs.storage import Storage, Voice
from tingji.types import HistoryEntry, SpeakerTurn, TranscribeOptions

MAX_SPEAKER_NAME = 64
MIN_VOICE_SECONDS, MAX_VOICE_SECONDS = 3.0, 30.0
"""How much of one person's speech a voice profile is made from."""


class SpeakerService:
    """Who speaks: told apart in recordings, named after enrolled voices, renamed in entries."""

    settings: Settings
    _diarizer: Diarizer | None
    _diarizer_lock: threading.Lock

    @property
    def history(self) -> Storage:
        raise NotImplementedError

    def get_entry(self, entry_id: int) -> HistoryEntry:
        raise NotImplementedError

    def entry_audio(self, entry_id: int) -> Path | None:
        raise NotImplementedError

    def diarizer(self) -> Diarizer:
        """The speaker diarizer, loaded (and its weights fetched) on first use."""
        with self._diarizer_lock:
            if self._diarizer is None:
                from tingji.engine.diarize import load_diarizer

                self._diarizer = load_diarizer(
                    self.settings.diarization_dir, fetch=self.settings.diarization_fetch
                )
            return self._diarizer

    def voice_of(self, clip: np.ndarray) -> np.ndarray:
        """A voice embedding of a clip of one speaker (16 kHz mono, a few seconds)."""
        return self.diarizer().embedder.embed([clip])[0]

    # -- voice profiles ----------------------------------------------------------------------
    def voices(self) -> list[Voice]:
        return self.history.voices()

    def enrol_voice(self, name: str, source: Source, label: str = "") -> Voice:
        """Enrol a named voice from a clip of that person alone (3–30 s; 5–10 s is plenty):
        recordings diarized from then on label a speaker who sounds like it with the name."""
        cleaned = _speaker_name(name)
        try:
            blocks = list(audio.stream(source, max_seconds=MAX_VOICE_SECONDS + 0.5))
        except AudioError as exc:
            exc.source = label or exc.source
            raise
        clip = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
        seconds = len(clip) / audio.SAMPLE_RATE
        if seconds < MIN_VOICE_SECONDS:
            raise OptionError(
                f"a voice needs at least {MIN_VOICE_SECONDS:.0f} s of speech; this clip has "
                f"{seconds:.1f} s"
            )
        self.history.save_voice(cleaned, self.voice_of(clip), label)
        return next(v for v in self.history.voices() if v.name == cleaned)

    def enrol_from_entry(self, entry_id: int, speaker: str, name: str) -> Voice:
        """Enrol a speaker of a past entry (from its stored audio: the speaker's longest
        segments, up to 30 s)."""
        cleaned = _speaker_name(name)
        entry = self.get_entry(entry_id)
        path = self.entry_audio(entry_id)
        if path is None:
            raise NotFoundError(f"the audio of entry {entry_id} is not stored any more")
        mine = sorted(
            (s for s in entry.segments if s.speaker == speaker), key=lambda s: s.start - s.end
        )
        if not mine:
            raise NotFoundError(f"entry {entry_id} has no speaker '{speaker}'")
        samples = audio.load(str(path))
        pieces, total = [], 0.0
        for seg in mine:
            if total >= MAX_VOICE_SECONDS:
                break
            piece = samples[int(seg.start * audio.SAMPLE_RATE) : int(seg.end * audio.SAMPLE_RATE)]
            pieces.append(piece)
            total += len(piece) / audio.SAMPLE_RATE
        if total < MIN_VOICE_SECONDS:
            raise OptionError(
                f"{speaker} speaks {total:.1f} s in entry {entry_id}; a voice needs "
                f"{MIN_VOICE_SECONDS:.0f} s"
            )
        voice = self.voice_of(np.concatenate(pieces))
        self.history.save_voice(cleaned, voice, f"entry {entry_id}, {speaker}")
        return next(v for v in self.history.voices() if v.name == cleaned)

    def delete_voice(self, name: str) -> None:
        if not self.history.delete_voice(name):
            raise NotFoundError(f"no voice named '{name}'")

    def _speakers_for(self, voices: dict[str, np.ndarray]) -> Diarize:
        def run(
            samples: np.ndarray, options: TranscribeOptions, progress: Callable[[float], None]
        ) -> list[SpeakerTurn]:
            from tingji.engine.diarize import SpeakerCount
            from tingji.engine.diarize.voices import name_speakers

            count = SpeakerCount(
                exact=options.speakers,
                minimum=options.min_speakers or 1,
                maximum=options.max_speakers or MAX_SPEAKERS,
            )
            found = self.diarizer()(samples, count, progress)
            known = {v.name: v.embedding for v in self.history.voices()} | voices
            if known:
                found = name_speakers(found, known, self.settings.voice_match)
            return found.turns

        return run

    def rename_speaker(self, entry_id: int, speaker: str, name: str) -> HistoryEntry:
        """Give a speaker of an entry a name (S2 → 王经理) in every segment and turn."""
        cleaned = _speaker_name(name)
        self.get_entry(entry_id)

        def rename(entry: HistoryEntry) -> HistoryEntry:
            if speaker not in edits.speakers_of(entry):
                raise NotFoundError(f"entry {entry_id} has no speaker '{speaker}'")
            return edits.rename_speaker(entry, speaker, cleaned)

        return self._corrected(entry_id, rename)

    def edit_segment(
        self, entry_id: int, index: int, *, text: str | None = None, speaker: str | None = None
    ) -> HistoryEntry:
        """Correct segment ``index`` (0-based) of an entry: what it says, who says it, or both.
        The recognition is kept beside (``entry.original``); search, exports and minutes use
        the correction."""
        if text is None and speaker is None:
            raise OptionError("say what to correct: the segment's text, its speaker or both")
        said = None if text is None else _segment_text(text)
        who = None if speaker is None else _speaker_name(speaker)

        def change(entry: HistoryEntry) -> HistoryEntry:
            _check_index(entry, index)
            return edits.edit_segment(entry, index, text=said, speaker=who)

        return self._corrected(entry_id, change)

    def revert_segment(self, entry_id: int, index: int) -> HistoryEntry:
        """Put segment ``index`` back as it was recognised."""

        def change(entry: HistoryEntry) -> HistoryEntry:
            _check_index(entry, index)
            return edits.revert_segment(entry, index)

        return self._corrected(entry_id, change)

    def _corrected(
        self, entry_id: int, change: Callable[[HistoryEntry], HistoryEntry]
    ) -> HistoryEntry:
        entry = self.history.update_transcription(entry_id, change)
        if entry is None:
            raise NotFoundError(f"no history entry {entry_id}")
        return entry


def _speaker_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > MAX_SPEAKER_NAME or not cleaned.isprintable():
        raise OptionError(f"a speaker's name must be 1–{MAX_SPEAKER_NAME} printable characters")
    return cleaned


def _segment_text(text: str) -> str:
    cleaned = " ".join(text.split())
    if not cleaned:
        raise OptionError("a segment's text cannot be empty")
    if len(cleaned) > edits.MAX_SEGMENT_TEXT or not cleaned.isprintable():
        raise OptionError(
            f"a segment's text must be at most {edits.MAX_SEGMENT_TEXT} printable characters"
        )
    return cleaned


def _check_index(entry: HistoryEntry, index: int) -> None:
    if not 0 <= index < len(entry.segments):
        raise NotFoundError(
            f"entry {entry.id} has no segment {index} (it has {len(entry.segments)}, from 0)"
        )
