"""Live recognition over FunASR's WebSocket protocol, so that FunASR's own clients work as they are.

Where: ``ws://HOST:PORT/`` (FunASR's clients connect with no path) and ``ws://HOST:PORT/ws/asr``,
subprotocol ``binary``. When API keys are configured a key is required, as ``?api_key=KEY``,
``X-API-Key`` or ``Authorization: Bearer KEY`` (the web UI's Live tab sends a short-lived
``?ticket=``); FunASR's clients send none, so they work only against a server without keys.

Client → server:

1. A JSON text frame: ``mode`` ("offline" | "online" | "2pass"; default "2pass"),
   ``wav_name``, ``wav_format`` ("pcm"), ``audio_fs`` (default 16000; 8000 to 48000 are
   resampled), ``is_speaking`` (true), ``chunk_size`` and ``chunk_interval`` (accepted; the
   decoding schedule is tingji's own), ``hotwords`` (a JSON object string ``{"term": weight}``
   or terms separated by spaces, commas or lines; weights are ignored) and ``itn`` (bool).
   tingji also reads ``language`` ("zh", "en", ...), which saves detecting it.
2. Binary frames of raw PCM, 16-bit little-endian mono, of any length.
3. ``{"is_speaking": false}`` (newer clients add ``"is_end": true``) ends the stream. Another
   configuration frame may then start a new one on the same connection.

Server → client, JSON text frames:

- partial text (online, 2pass): ``{"mode": "online" | "2pass-online", "wav_name", "text",
  "is_final": false, "hypothesis"}``; ``text`` is *new* settled text to append, as FunASR's
  clients expect (it may be empty), ``hypothesis`` (tingji's addition) the utterance's whole
  current text, which later partials replace;
- finished sentences (2pass: at each pause; offline: all at the end): ``{"mode":
  "2pass-offline" | "offline", "wav_name", "text", "is_final", "timestamp", "stamp_sents"}``;
  ``timestamp`` is a string ``"[[start_ms,end_ms],...]"``, one pair per CJK character, digit or
  word (spread evenly over the segment), ``stamp_sents`` a list of ``{"text_seg", "punc",
  "start", "end", "ts_list"}``, both in ms from the start of the stream;
- the last message of a stream carries ``"is_final": true, "is_end": true``;
- on an error ``{"error": message, "code": code, "is_final": false, "is_end": true}``, then
  the connection closes (1007 malformed frames, 1008 no key, too long, idle, 1013 busy, 1011
  server error).

What a stream recognised is saved to history when it ends (or its client goes away).
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any

from tingji.engine.hotwords import parse_hotwords
from tingji.engine.live_text import shown_end
from tingji.engine.streaming import Event, Final, Partial
from tingji.types import Segment

MODES = ("offline", "online", "2pass")
MIN_RATE, MAX_RATE = 8000, 48000
MAX_TEXT_FRAME = 256 * 1024
"""Characters a text frame may hold (a configuration with a long hotword list fits)."""
_ONLINE = {"online": "online", "2pass": "2pass-online"}
_OFFLINE = {"offline": "offline", "2pass": "2pass-offline", "online": "online"}


class Refusal(Exception):
    """Ends the connection with an error message and a close code."""

    def __init__(self, code: str, message: str, close_code: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = close_code


@dataclass(frozen=True)
class Config:
    mode: str
    wav_name: str
    sample_rate: int
    hotwords: tuple[str, ...]
    itn: bool | None
    language: str | None
    speaking: bool


# -- the configuration frame -----------------------------------------------------------------
def parse_config(text: str) -> Config:
    data = _json_object(text)
    mode = data.get("mode", "2pass")
    if mode not in MODES:
        raise _bad(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    wav_format = data.get("wav_format", "pcm")
    if not isinstance(wav_format, str) or wav_format.lower() != "pcm":
        raise _bad(
            f"wav_format {wav_format!r} is not served here: stream raw PCM (wav_format 'pcm'), "
            "or upload the file to /api/transcriptions"
        )
    rate = data.get("audio_fs", 16000)
    if isinstance(rate, float) and rate.is_integer():
        rate = int(rate)
    if isinstance(rate, bool) or not isinstance(rate, int) or not MIN_RATE <= rate <= MAX_RATE:
        raise _bad(f"audio_fs must be a sample rate from {MIN_RATE} to {MAX_RATE} Hz, not {rate!r}")
    name = data.get("wav_name", "wav-default-id")
    if not isinstance(name, str):
        raise _bad("wav_name must be a string")
    itn = data.get("itn")
    if itn is not None and not isinstance(itn, bool):
        if itn not in (0, 1):
            raise _bad("itn must be true or false")
        itn = bool(itn)
    language = data.get("language")
    if language is not None and not isinstance(language, str):
        raise _bad("language must be a language code such as 'zh'")
    chunk = data.get("chunk_size")
    if chunk is not None and not _chunk_size_ok(chunk):
        raise _bad("chunk_size must be three numbers, such as [5, 10, 5]")
    speaking = data.get("is_speaking", True)
    if not isinstance(speaking, bool):
        raise _bad("is_speaking must be true or false")
    return Config(
        mode=mode,
        wav_name=name[:200] or "wav-default-id",
        sample_rate=rate,
        hotwords=hotwords_field(data.get("hotwords", data.get("hotword"))),
        itn=itn,
        language=language or None,
        speaking=speaking,
    )


def _json_object(text: str) -> dict[str, Any]:
    if len(text) > MAX_TEXT_FRAME:
        raise _bad(f"a text frame may hold at most {MAX_TEXT_FRAME // 1024} KiB")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad(f"a text frame must be a JSON object; this one is not JSON ({exc.msg})") from exc
    except RecursionError as exc:
        raise _bad(
            "a text frame must be a flat JSON object; this one is nested too deeply"
        ) from exc
    if not isinstance(data, dict):
        raise _bad("a text frame must be a JSON object")
    return data


def ends_stream(text: str) -> bool:
    data = _json_object(text)
    ended = data.get("is_end") is True or data.get("is_finished") is True
    return ended or data.get("is_speaking") is False


def _chunk_size_ok(value: Any) -> bool:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or len(value) != 3:
        return False
    try:
        return all(int(v) >= 0 for v in value)
    except (TypeError, ValueError):
        return False


def hotwords_field(value: Any) -> tuple[str, ...]:
    """FunASR sends hotwords as a JSON object string ``{"term": weight}``; plain lists too."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return tuple(parse_hotwords(value))
    if isinstance(value, dict):
        value = list(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(parse_hotwords("\n".join(value)))
    if isinstance(value, str | int | float):
        return tuple(parse_hotwords(str(value)))
    raise _bad('hotwords must be a JSON object string such as {"达摩院": 20}, or a list of terms')


def _bad(message: str) -> Refusal:
    return Refusal("bad_request", message, 1007)


# -- results as FunASR messages ----------------------------------------------------------------
class Shaper:
    """Engine events → FunASR messages for one stream.

    FunASR's clients append each partial text to what they show, and replace the partial text
    of an utterance by its 2pass-offline sentence; so partials carry only the newly settled
    text, and a 2pass-offline message (empty if need be) closes every utterance that showed any.
    Partials also carry ``hypothesis``, the whole current text of the utterance, for clients
    that replace rather than append (tingji's Live tab); a partial is sent whenever it changes.
    """

    def __init__(self, mode: str, wav_name: str) -> None:
        self.mode = mode
        self.wav_name = wav_name
        self.sent = ""  # partial text sent for the utterance in progress
        self.hypothesis = ""  # its whole current hypothesis, as last sent
        self.tail = ""  # the last text sent, to know whether a space must separate words

    def messages(self, events: list[Event]) -> list[dict[str, Any]]:
        out = []
        for event in events:
            message = self._partial(event) if isinstance(event, Partial) else self._final(event)
            if message is not None:
                out.append(message)
        return out

    def last(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Mark the stream's last message (adding an empty one when there is none)."""
        if not messages:
            messages = [self._message(_OFFLINE[self.mode], "")]
        messages[-1]["is_final"] = True
        messages[-1]["is_end"] = True
        return messages

    def _partial(self, event: Partial) -> dict[str, Any] | None:
        if self.mode == "offline" or not event.text:
            return None
        new = event.stable[len(self.sent) :] if event.stable.startswith(self.sent) else ""
        if new:
            new = self._spaced(new) if not self.sent else new
            self.sent = event.stable
            self.tail = new
        elif event.text == self.hypothesis:
            return None
        self.hypothesis = event.text
        message = self._message(_ONLINE[self.mode], new)
        message["hypothesis"] = event.text
        return message

    def _final(self, event: Final) -> dict[str, Any] | None:
        shown, self.sent, self.hypothesis = self.sent, "", ""
        if self.mode == "online":  # no corrections in this mode: the rest of the utterance
            new = event.raw[shown_end(shown, event.raw) :]
            if not new.strip():
                return None
            new = self._spaced(new) if not shown else new
            self.tail = new
            return self._message("online", new)
        if not event.text and not shown:
            return None
        text = self._spaced(event.text) if event.text else ""
        self.tail = text or self.tail
        message = self._message(_OFFLINE[self.mode], text)
        timestamp, sentences = stamps(event.segments)
        if timestamp:
            message["timestamp"] = json.dumps(timestamp, separators=(",", ":"))
            message["stamp_sents"] = sentences
        return message

    def _spaced(self, text: str) -> str:
        """A leading space where Latin text follows Latin text."""
        if self.tail[-1:] in (".", ",", "!", "?") or (self.tail and _is_latin(self.tail[-1])):
            return " " + text if text[:1].isascii() and text[:1].isalnum() else text
        return text

    def _message(self, mode: str, text: str) -> dict[str, Any]:
        return {"mode": mode, "wav_name": self.wav_name, "text": text, "is_final": False}


def stamps(segments: tuple[Segment, ...]) -> tuple[list[list[int]], list[dict[str, Any]]]:
    """FunASR's ``timestamp`` pairs and ``stamp_sents`` for a final's segments.

    Units are as FunASR counts them: each CJK character and each digit alone, each Latin word
    whole, punctuation none (it ends a sentence). Whisper times segments, not characters, so a
    segment's time is spread over its units by their length.
    """
    pairs: list[list[int]] = []
    sentences: list[dict[str, Any]] = []
    words: list[str] = []
    spans: list[list[int]] = []

    def close(punc: str) -> None:
        if words:
            sentences.append(
                {
                    "text_seg": " ".join(words),
                    "punc": punc,
                    "start": spans[0][0],
                    "end": spans[-1][1],
                    "ts_list": list(spans),
                }
            )
        words.clear()
        spans.clear()

    for segment in segments:
        units = _units(segment.text)
        weights = [len(u) if not p else 0 for u, p in units]
        total = sum(weights) or 1
        start_ms, length_ms = segment.start * 1000, (segment.end - segment.start) * 1000
        done = 0
        for (unit, is_punc), weight in zip(units, weights, strict=True):
            if is_punc:
                close(unit)
                continue
            begin = round(start_ms + length_ms * done / total)
            done += weight
            pair = [begin, round(start_ms + length_ms * done / total)]
            pairs.append(pair)
            words.append(unit)
            spans.append(pair)
    close("")
    return pairs, sentences


def _units(text: str) -> list[tuple[str, bool]]:
    """(unit, is punctuation) in reading order."""
    units: list[tuple[str, bool]] = []
    word = ""
    for ch in text:
        if _is_cjk(ch) or ch.isdigit() or _is_punctuation(ch) or ch.isspace():
            if word:
                units.append((word, False))
                word = ""
            if not ch.isspace():
                units.append((ch, _is_punctuation(ch)))
        else:
            word += ch
    if word:
        units.append((word, False))
    return units


def _is_punctuation(ch: str) -> bool:
    return ch not in "&'-" and unicodedata.category(ch)[0] in "PS"


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (
        0x3400 <= code <= 0x9FFF
        or 0xF900 <= code <= 0xFAFF
        or 0x3040 <= code <= 0x30FF
        or 0xAC00 <= code <= 0xD7AF
        or 0x20000 <= code <= 0x2FA1F
    )


def _is_latin(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()
