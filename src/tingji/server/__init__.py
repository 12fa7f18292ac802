"""HTTP API (FastAPI). Wire formats (OpenAI, FunASR) live only in this package."""

from tingji.server.app import create_app

__all__ = ["create_app"]
