"""The ``tingji`` command, run as a real subprocess on real speech.

Every run loads the embedded model (about a second), so error cases share one invocation with a
good file: that also shows that one bad file does not stop the others.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tingji.engine.device import cuda_device_count
from tingji.engine.models import EMBEDDED_DIRNAME, ensure_embedded_model
from tingji.formats import FORMATS

from .conftest import shared_clip

JFK = "en/faster_whisper/jfk.flac"
ZH = "zh/funasr/asr_example_zh.wav"  # 欢迎大家来体验达摩院推出的语音识别模型
JFK_LINE = "ask not what your country can do for you"
SRT_TIME = re.compile(r"^(\d{2}):(\d{2}):(\d{2}),(\d{3}) --> (\d{2}):(\d{2}):(\d{2}),(\d{3})$")


@pytest.fixture(scope="module")
def assembled(model_cache: Path) -> Path:
    """Assemble the embedded model once, so no CLI run pays for it."""
    return ensure_embedded_model(model_cache)


@pytest.fixture
def env(tmp_path: Path, assembled: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TINGJI_", "COLUMNS"))}
    return {
        **clean,
        "TINGJI_DATA_DIR": str(tmp_path / "data"),
        "TINGJI_MODELS_DIR": str(assembled.parent),
        "HF_HUB_OFFLINE": "1",
        "PYTHONIOENCODING": "utf-8",
    }


def tingji(*args: str | Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tingji.cli", *map(str, args)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=180,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("tingji: error:")]


def summary_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if re.match(r"^\d+ of \d+ files, ", line)]
    assert len(lines) == 1, stderr
    return lines[0]


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


# -- recognition ---------------------------------------------------------------------------------
def test_transcribe_prints_text(env: dict[str, str], tmp_path: Path) -> None:
    clip = shared_clip(JFK)
    run = tingji("transcribe", clip, env=env, cwd=tmp_path)

    assert run.returncode == 0, run.stderr
    assert JFK_LINE in run.stdout.lower()
    assert "Traceback" not in run.stderr
    assert not error_lines(run.stderr)
    assert f"{clip}: 11.0 s audio in " in run.stderr
    assert "language en" in run.stderr
    summary = summary_line(run.stderr)
    assert summary.startswith("1 of 1 files, 11.0 s audio in ")
    assert re.search(r"\(\d+\.\d× real time\)$", summary), summary


def test_transcribe_writes_every_format(env: dict[str, str], tmp_path: Path) -> None:
    clip = shared_clip(JFK)
    out = tmp_path / "out" / "sub"  # created on demand
    run = tingji(
        "transcribe", clip, "--format", ",".join(FORMATS), "-o", out, env=env, cwd=tmp_path
    )

    assert run.returncode == 0, run.stderr
    assert run.stdout == ""  # results go to files, not to stdout
    assert summary_line(run.stderr).startswith("1 of 1 files, 11.0 s audio")
    assert sorted(p.name for p in out.iterdir()) == sorted(f"jfk.{fmt}" for fmt in FORMATS)

    txt = (out / "jfk.txt").read_text(encoding="utf-8")
    assert JFK_LINE in txt.lower()
    assert txt.endswith("\n")

    # SRT: numbered cues, HH:MM:SS,mmm --> HH:MM:SS,mmm, times increasing, inside the audio
    srt = (out / "jfk.srt").read_text(encoding="utf-8")
    cues = [block.split("\n") for block in srt.strip("\n").split("\n\n")]
    assert cues, srt
    previous_start = -1.0
    srt_text = []
    for number, cue in enumerate(cues, start=1):
        assert len(cue) >= 3, cue
        assert cue[0] == str(number), cue
        match = SRT_TIME.match(cue[1])
        assert match, cue[1]
        start, end = _seconds(*match.groups()[:4]), _seconds(*match.groups()[4:])
        assert previous_start < start < end <= 11.5, cue
        previous_start = start
        srt_text.append(" ".join(cue[2:]).strip())
        assert srt_text[-1], cue
    assert JFK_LINE in " ".join(srt_text).lower()

    vtt = (out / "jfk.vtt").read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT\n")
    vtt_times = re.findall(r"^\d{2}:\d{2}:\d{2}\.\d{3} --> \d{2}:\d{2}:\d{2}\.\d{3}$", vtt, re.M)
    assert len(vtt_times) == len(cues)

    data = json.loads((out / "jfk.json").read_text(encoding="utf-8"))
    assert JFK_LINE in data["text"].lower()
    assert data["language"] == "en"
    assert data["duration"] == pytest.approx(11.0, abs=0.1)
    assert len(data["segments"]) == len(cues)
    assert all({"start", "end", "text"} <= set(seg) for seg in data["segments"])
    assert data["segments"][0]["start"] < data["segments"][-1]["end"] <= 11.5
    assert "whisper-base" in data["model"]["name"]
    assert data["model"]["path"] == str(Path(env["TINGJI_MODELS_DIR"]) / EMBEDDED_DIRNAME)
    assert data["source"] == str(clip)

    assert (out / "jfk.rttm").read_text(encoding="utf-8") == ""  # no speakers asked for
    rows = list(csv.reader(io.StringIO((out / "jfk.csv").read_text(encoding="utf-8"))))
    assert rows[0] == ["start", "end", "text"]
    assert len(rows) == len(cues) + 1
    assert [float(r[0]) for r in rows[1:]] == [s["start"] for s in data["segments"]]
    assert [r[2] for r in rows[1:]] == [s["text"] for s in data["segments"]]


def test_models_live_in_the_users_cache_not_where_the_cli_runs(
    env: dict[str, str], tmp_path: Path, assembled: Path
) -> None:
    """Without settings, the CLI keeps models in ``$TINGJI_HOME/models`` (else
    ``~/.cache/tingji/models``), shared with the server; it leaves nothing where it runs."""
    home, work, out = tmp_path / "home", tmp_path / "work", tmp_path / "out"
    (home / "models").mkdir(parents=True)
    (home / "models" / EMBEDDED_DIRNAME).symlink_to(assembled)  # as if assembled there before
    work.mkdir()
    plain = {k: v for k, v in env.items() if k not in ("TINGJI_DATA_DIR", "TINGJI_MODELS_DIR")}
    run = tingji(
        "transcribe",
        shared_clip(JFK),
        "-f",
        "json",
        "-o",
        out,
        env={**plain, "TINGJI_HOME": str(home)},
        cwd=work,
    )
    assert run.returncode == 0, run.stderr
    data = json.loads((out / "jfk.json").read_text(encoding="utf-8"))
    assert data["model"]["path"] == str(home / "models" / EMBEDDED_DIRNAME)
    assert list(work.iterdir()) == []


def test_mandarin_traditional_with_hotwords(env: dict[str, str], tmp_path: Path) -> None:
    clip = shared_clip(ZH)
    run = tingji(
        "transcribe",
        clip,
        "--language",
        "zh",
        "--traditional",
        "--hotwords",
        "达摩院,语音识别",
        env=env,
        cwd=tmp_path,
    )

    assert run.returncode == 0, run.stderr
    text = run.stdout.strip()
    assert "達摩院" in text
    assert "識別" in text or "歡迎" in text, text
    assert "达摩院" not in text and "欢迎" not in text  # nothing left in simplified script
    assert "language zh" in run.stderr
    assert summary_line(run.stderr).startswith("1 of 1 files")


# -- bad input -----------------------------------------------------------------------------------
def test_bad_files_fail_one_by_one(env: dict[str, str], tmp_path: Path) -> None:
    good = shared_clip(ZH)
    bad = tmp_path / "bad"
    bad.mkdir()
    missing = bad / "missing.wav"
    empty = bad / "empty.wav"
    empty.write_bytes(b"")
    text = bad / "notes.wav"
    text.write_text("These are meeting notes, not audio.\n" * 20, encoding="utf-8")
    noise = bad / "noise.mp3"
    noise.write_bytes(random.Random(7).randbytes(8192))
    truncated = bad / "cut.wav"
    data = good.read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    reasons = {
        missing: "file not found",
        empty: "empty",
        text: "not an audio or video file",
        noise: "",  # not media, or damaged: FFmpeg decides which
        truncated: "truncated",
    }
    files = [missing, empty, good, text, noise, truncated]

    run = tingji("transcribe", *files, "--language", "zh", env=env, cwd=tmp_path)

    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    errors = error_lines(run.stderr)
    assert len(errors) == len(reasons), run.stderr
    for path, reason in reasons.items():
        mine = [line for line in errors if line.startswith(f"tingji: error: {path}: ")]
        assert len(mine) == 1, (path, run.stderr)
        assert reason in mine[0], mine[0]
    # the good file, between the bad ones, is still recognised and printed
    assert f"# {good}" in run.stdout
    assert "达摩院" in run.stdout
    for path in reasons:
        assert f"# {path}" not in run.stdout
    assert f"{good}: 5.5 s audio in " in run.stderr
    summary = summary_line(run.stderr)
    assert summary.startswith("1 of 6 files, 5.5 s audio in ")
    assert summary.endswith(", 5 failed")


def test_debug_shows_traceback(env: dict[str, str], tmp_path: Path) -> None:
    missing = tmp_path / "missing.wav"
    run = tingji("--debug", "transcribe", missing, env=env, cwd=tmp_path)

    assert run.returncode == 1
    assert "Traceback (most recent call last)" in run.stderr
    assert "FileNotFoundError" in run.stderr  # the original cause, not only the wrapper
    assert error_lines(run.stderr) == [f"tingji: error: {missing}: file not found"]
    assert summary_line(run.stderr).endswith("1 failed")


# -- bad options ---------------------------------------------------------------------------------
def test_unknown_language_is_a_usage_error(env: dict[str, str], tmp_path: Path) -> None:
    run = tingji("transcribe", shared_clip(JFK), "--language", "xx", env=env, cwd=tmp_path)

    assert run.returncode == 2
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("tingji: error: unknown language 'xx'")
    assert " en, " in lines[0] and " zh" in lines[0]  # says which ones it does know


def test_unknown_format_is_a_usage_error(env: dict[str, str], tmp_path: Path) -> None:
    run = tingji("transcribe", shared_clip(JFK), "--format", "srt,docx", env=env, cwd=tmp_path)

    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.strip().splitlines() == [
        f"tingji: error: unknown format 'docx'; use {', '.join(FORMATS)}"
    ]


def test_unwritable_output_dir_is_a_usage_error(env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    targets = [blocker / "out"]
    if os.geteuid() != 0:  # root writes through directory permissions
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        targets.append(locked)
    for out in targets:
        run = tingji("transcribe", shared_clip(JFK), "-o", out, env=env, cwd=tmp_path)

        assert run.returncode == 2, run.stderr
        assert run.stdout == ""
        assert "Traceback" not in run.stderr
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1, run.stderr
        assert lines[0].startswith(f"tingji: error: cannot write to the output directory {out}: ")
    assert blocker.read_text() == "not a directory"


# -- info and help -------------------------------------------------------------------------------
def test_info(env: dict[str, str], tmp_path: Path, assembled: Path) -> None:
    run = tingji("info", env=env, cwd=tmp_path)

    assert run.returncode == 0, run.stderr
    out = run.stdout
    cores = re.search(r"^CPU:\s+(\d+) cores", out, re.M)
    assert cores and int(cores.group(1)) == os.cpu_count(), out
    ram = re.search(r"^RAM:\s+(\d+) MB free of (\d+) MB", out, re.M)
    assert ram, out
    assert int(ram.group(2)) == psutil.virtual_memory().total // 2**20
    assert 0 < int(ram.group(1)) <= int(ram.group(2))
    assert re.search(rf"^Model:\s+whisper-base .* at {re.escape(str(assembled))}$", out, re.M)
    device = re.search(r"^Device:\s+(\w+), (\w+) — (.*)$", out, re.M)
    assert device, out
    if cuda_device_count() == 0:
        assert device.group(1) == "cpu"
        assert "no CUDA" in device.group(3)
    assert "ctranslate2" in out and "faster-whisper" in out


def test_help(env: dict[str, str], tmp_path: Path) -> None:
    top = tingji("--help", env=env, cwd=tmp_path)
    assert top.returncode == 0
    for word in ("transcribe", "info", "--format", "--hotwords", "TINGJI_DATA_DIR"):
        assert word in top.stdout, word

    sub = tingji("transcribe", "--help", env=env, cwd=tmp_path)
    assert sub.returncode == 0
    flat = " ".join(sub.stdout.split())  # argparse wraps to the terminal width
    assert f"comma separated: {', '.join(FORMATS)}" in flat
    for option in ("--hotwords", "--hotwords-file", "--language", "--traditional", "-o"):
        assert option in flat, option
