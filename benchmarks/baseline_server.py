"""The baseline for ``bench_server``: a plain FastAPI endpoint calling faster-whisper in a
threadpool, as one would write it in an afternoon. Run: ``python -m benchmarks.baseline_server
PORT``."""

from __future__ import annotations

import sys
import tempfile
from typing import Annotated

import uvicorn
from fastapi import FastAPI, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from benchmarks import common

app = FastAPI()
model = common.plain_model()


def _transcribe(data: bytes, language: str | None) -> str:
    with tempfile.NamedTemporaryFile(suffix=".wav") as handle:
        handle.write(data)
        handle.flush()
        segments, _ = model.transcribe(handle.name, language=language, beam_size=common.BEAM_SIZE)
        return "".join(s.text for s in segments)


@app.post("/transcribe")
async def transcribe(
    file: Annotated[UploadFile, File()], language: Annotated[str | None, Form()] = None
) -> dict[str, str]:
    data = await file.read()
    return {"text": await run_in_threadpool(_transcribe, data, language)}


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
