"""The live WebSocket: FunASR's real-time protocol (:mod:`tingji.server.funasr_wire`) at
``ws://HOST:PORT/`` and ``ws://HOST:PORT/ws/asr``, each stream served by a receiving and a
working task, saved to history when it ends."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from fastapi import APIRouter, WebSocket
from starlette.concurrency import run_in_threadpool

from tingji.config import Settings
from tingji.engine.streaming import Event, LiveSession
from tingji.errors import BusyError, ModelError, OptionError, TingjiError
from tingji.server.access import authorised
from tingji.server.funasr_wire import Config, Refusal, Shaper, ends_stream, parse_config
from tingji.service import Tingji

log = logging.getLogger("tingji.server")
router = APIRouter(tags=["live"])


class _Gone(Exception):
    """The client went away."""


class _Pace:
    """The rules that keep a stream from holding its slot for ever: it is open at most
    ``stream_wall_limit_s``, and sends at least ``stream_min_rate`` seconds of audio a second
    over each ``stream_rate_window_s`` (after the first window)."""

    def __init__(self, settings: Settings, bytes_per_second: int, now: float) -> None:
        self.started = now
        self.wall = settings.stream_wall_limit_s
        self.min_rate = settings.stream_min_rate
        self.window = settings.stream_rate_window_s
        self.bytes_per_second = bytes_per_second
        self.recent: deque[tuple[float, int]] = deque()
        self.in_window = 0
        self.interval = min(1.0, self.window / 4)
        """Seconds between checks while no frame arrives."""

    def add(self, now: float, size: int) -> None:
        self.recent.append((now, size))
        self.in_window += size

    def check(self, now: float) -> None:
        if now - self.started >= self.wall:
            raise Refusal(
                "too_long", f"the stream was open for the longest allowed, {self.wall:g} s", 1008
            )
        if not self.min_rate or now - self.started < self.window:
            return
        while self.recent and self.recent[0][0] < now - self.window:
            self.in_window -= self.recent.popleft()[1]
        sent = self.in_window / self.bytes_per_second
        if sent < self.min_rate * self.window:
            raise Refusal(
                "too_slow",
                f"the stream sent {sent:.1f} s of audio in the last {self.window:g} s, less than "
                f"the {self.min_rate * self.window:g} s required (send audio in real time)",
                1008,
            )


@dataclass
class _Inbox:
    """Audio received and not yet recognised, shared by the receiving and the working task."""

    pending: bytearray = field(default_factory=bytearray)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False
    too_long: bool = False
    received: int = 0


@router.websocket("/")
@router.websocket("/ws/asr")
async def funasr(websocket: WebSocket) -> None:
    """FunASR's real-time protocol (see the module docstring)."""
    service: Tingji = websocket.app.state.service
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol="binary" if "binary" in offered else None)
    connection = _Connection(websocket, service)
    try:
        await connection.run()
    except _Gone:
        return
    except Refusal as refusal:
        await connection.refuse(refusal)
    except Exception:
        log.exception("live stream failed")
        await connection.refuse(Refusal("server_error", "the server failed on this stream", 1011))
        return
    await connection.close(1000)


class _Connection:
    def __init__(self, websocket: WebSocket, service: Tingji) -> None:
        self.ws = websocket
        self.service = service
        self.settings = service.settings
        self.wav_name = "wav-default-id"

    async def run(self) -> None:
        if not self._authorised():
            raise Refusal(
                "unauthorized",
                "a valid API key is required (?api_key=KEY, X-API-Key or Authorization: Bearer)",
                1008,
            )
        while True:
            message = await self._receive()
            if message is None:
                return
            if message.get("text") is None:
                raise Refusal(
                    "config_required", "send the JSON configuration frame before any audio", 1008
                )
            config = parse_config(message["text"])
            self.wav_name = config.wav_name
            if config.speaking:  # else an end frame without a stream: nothing to recognise
                await self._stream(config)

    # -- one stream --------------------------------------------------------------------------
    async def _stream(self, config: Config) -> None:
        """Serve one stream, from its configuration to its last message."""
        session = await self._open(config)
        inbox = _Inbox()
        shaper = Shaper(config.mode, config.wav_name)
        receiving = asyncio.create_task(self._receive_audio(inbox, config))
        working = asyncio.create_task(self._work(session, inbox, shaper))
        tasks = {receiving, working}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()
            with anyio.CancelScope(shield=True):  # free the stream even when cancelled
                await asyncio.gather(*tasks, return_exceptions=True)  # lets a decode finish
                await run_in_threadpool(self.service.end_live, session)
        for task in done:
            failure = None if task.cancelled() else task.exception()
            if failure is not None:
                raise failure
        if inbox.too_long:
            limit = self.settings.stream_max_seconds
            raise Refusal(
                "too_long", f"the stream reached the longest allowed, {limit:g} s of audio", 1008
            )

    async def _open(self, config: Config) -> LiveSession:
        overrides: dict[str, Any] = {"hotwords": config.hotwords}
        if config.itn is not None:
            overrides["itn"] = config.itn
        if config.language is not None:
            overrides["language"] = config.language
        try:
            options = self.service.options(**overrides)
            with anyio.CancelScope(shield=True):  # a stream opened is a stream to end
                session = await run_in_threadpool(
                    self.service.start_live,
                    options,
                    sample_rate=config.sample_rate,
                    partials=config.mode != "offline",
                    whole=config.mode == "offline",
                    name=config.wav_name,
                )
        except BusyError as exc:
            raise Refusal("busy", str(exc), 1013) from exc
        except OptionError as exc:
            raise Refusal("invalid_option", str(exc), 1007) from exc
        except ModelError as exc:
            raise Refusal("model_unavailable", str(exc), 1011) from exc
        return session

    async def _receive_audio(self, inbox: _Inbox, config: Config) -> None:
        limit = int(self.settings.stream_max_seconds * config.sample_rate) * 2
        pace = _Pace(self.settings, 2 * config.sample_rate, time.monotonic())
        while not inbox.ended:
            message = await self._receive(pace)
            if message is None:
                raise _Gone
            data = message.get("bytes")
            if data is not None:
                pace.add(time.monotonic(), len(data))
                if len(data) % 2:
                    raise Refusal(
                        "bad_audio",
                        f"a PCM frame of {len(data)} bytes: 16-bit samples come in pairs of bytes",
                        1007,
                    )
                room = limit - inbox.received
                inbox.pending += data[:room]
                inbox.received += min(len(data), room)
                inbox.too_long = inbox.received >= limit
                inbox.ended = inbox.too_long
            else:
                inbox.ended = ends_stream(message.get("text") or "")
            inbox.wake.set()

    async def _work(self, session: LiveSession, inbox: _Inbox, shaper: Shaper) -> None:
        while True:
            await inbox.wake.wait()
            inbox.wake.clear()
            while inbox.pending:
                data = bytes(inbox.pending)
                inbox.pending.clear()
                events = await self._engine(session.feed, data)
                await self._send_all(shaper.messages(events))
            if inbox.ended:
                messages = shaper.messages(await self._engine(session.finish))
                # a stream cut at the length limit ends with the error message instead
                await self._send_all(messages if inbox.too_long else shaper.last(messages))
                return

    async def _engine(self, call: Any, *args: Any) -> list[Event]:
        try:
            events: list[Event] = await run_in_threadpool(call, *args)
        except TingjiError as exc:
            raise Refusal("bad_audio", str(exc), 1007) from exc
        return events

    # -- frames ------------------------------------------------------------------------------
    async def _receive(self, pace: _Pace | None = None) -> MutableMapping[str, Any] | None:
        """The next frame; None when the client closed the connection.

        Ends the connection when nothing arrives for ``stream_idle_s`` and, in a stream
        (``pace``), as soon as it breaks the wall-clock or minimum-rate rule, even between
        frames. The pending receive is kept (not cancelled) while the rules are checked.
        """
        idle = self.settings.stream_idle_s
        idle_until = time.monotonic() + idle
        receiving = asyncio.ensure_future(self.ws.receive())
        try:
            while not receiving.done():
                now = time.monotonic()
                if pace is not None:
                    pace.check(now)
                if now >= idle_until:
                    raise Refusal("idle", f"nothing was received for {idle:g} s", 1008)
                wait = idle_until - now if pace is None else min(idle_until - now, pace.interval)
                await asyncio.wait({receiving}, timeout=wait)
            message = receiving.result()
        except RuntimeError as exc:  # receive after a disconnect
            raise _Gone from exc
        finally:
            receiving.cancel()
        if message["type"] == "websocket.disconnect":
            return None
        return message

    async def _send_all(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            await self._send(message)

    async def _send(self, message: dict[str, Any]) -> None:
        try:
            await self.ws.send_text(json.dumps(message, ensure_ascii=False))
        except Exception as exc:  # noqa: BLE001 - each server raises its own kind on a lost peer
            raise _Gone from exc

    async def refuse(self, refusal: Refusal) -> None:
        log.info("live stream refused: %s", refusal.message)
        error = {
            "error": refusal.message,
            "code": refusal.code,
            "wav_name": self.wav_name,
            "text": "",
            "is_final": False,
            "is_end": True,
        }
        try:
            await self._send(error)
        except _Gone:
            return
        await self.close(refusal.close_code, _reason(refusal))

    async def close(self, code: int, reason: str = "") -> None:
        try:
            await self.ws.close(code, reason)
        except Exception:  # noqa: BLE001 - already closed by the client
            log.debug("closing a closed live connection")

    def _authorised(self) -> bool:
        """A web page's ticket, or a key or the access token (no cookie: see TokenGate)."""
        ticket = self.ws.query_params.get("ticket")
        if ticket and self.service.check_live_ticket(ticket):
            return True
        return authorised(self.settings, self.ws.headers, self.ws.query_params)


def _reason(refusal: Refusal) -> str:
    """The close frame's reason: the code and why, within the 123 bytes a close frame allows."""
    reason = f"{refusal.code}: {refusal.message}"
    return reason.encode()[:123].decode(errors="ignore")
