"""Where tingji keeps what one user's runs share (models, the diarization weights, jieba's
table): ``$TINGJI_HOME``, else ``$XDG_CACHE_HOME/tingji``, else ``~/.cache/tingji``. The CLI and
the server use the same folder, so a model is fetched and assembled once per user."""

from __future__ import annotations

import os
from pathlib import Path


def user_home() -> Path:
    home = os.environ.get("TINGJI_HOME")
    if home:
        return Path(home).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tingji"
