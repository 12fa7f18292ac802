"""One error tree for tingji. Every error carries a message written for the user.

::

    TingjiError
    ├── AudioError            the input could not be read as audio
    │   ├── AudioNotFoundError    no such file
    │   ├── EmptyAudioError       zero bytes, or no audio samples in it
    │   ├── TruncatedAudioError   decodes to clearly less than its declared duration
    │   ├── TooLongAudioError     longer than the configured limit (declared, or while decoding)
    │   └── UnsupportedFormatError  not a format tingji can decode
    │       └── FileTypeError         refused by its file name extension before decoding
    ├── ModelError            a model could not be found, assembled or loaded
    │   └── MissingExtraError     the backend needs an optional dependency
    ├── OptionError           an option has a value tingji does not know (language, device ...)
    ├── OutputError           a result could not be written
    ├── TooLargeError         an upload is over the configured size limit
    │   └── TooManyFilesError     a batch has more files than a job takes
    ├── NotFoundError         no history entry, job or list with that id
    ├── BusyError             the work queue is full; try again later
    ├── DatabaseError         the database cannot be reached, or its driver is not installed
    └── ClusterError          the Ray cluster cannot be reached, or lost a file too often

The edges (CLI, HTTP server, UI) translate these into one line, a status code or a message;
nothing below them prints or exits.
"""

from __future__ import annotations


class TingjiError(Exception):
    """Base of every error tingji raises on purpose."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.source = source

    def __str__(self) -> str:
        if self.source:
            return f"{self.source}: {self.message}"
        return self.message


class AudioError(TingjiError):
    """The input could not be read as audio (corrupt, truncated, not audio)."""


class AudioNotFoundError(AudioError):
    """The named file does not exist or is not a regular file."""


class EmptyAudioError(AudioError):
    """The file is empty or holds no audio samples."""


class TruncatedAudioError(AudioError):
    """The file decodes to clearly less audio than its header declares (cut off, partial copy)."""


class TooLongAudioError(AudioError):
    """The audio is longer than the configured limit (``max_audio_hours``)."""


class UnsupportedFormatError(AudioError):
    """The file is not in a format tingji decodes."""


class FileTypeError(UnsupportedFormatError):
    """A file refused by its extension, before any decoding."""


class ModelError(TingjiError):
    """A model could not be found, assembled, verified or loaded."""

    unavailable: str | None = None
    """The model's name, when it is simply not on this machine and cannot be downloaded."""


class MissingExtraError(ModelError):
    """A backend needs an optional dependency that is not installed."""


class OptionError(TingjiError):
    """An option has a value tingji does not accept."""

    model: str | None = None
    """The model asked for, when the option refused is the choice of model."""


class OutputError(TingjiError):
    """A result could not be written (unwritable directory, full disk)."""


class TooLargeError(TingjiError):
    """An upload, or the number of files in a batch, is over the configured limit."""


class NotFoundError(TingjiError):
    """No history entry, job or hotword list with that id."""


class BusyError(TingjiError):
    """Every worker is busy and the queue is full."""

    def __init__(self, message: str, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyFilesError(TooLargeError):
    """A batch job has more files than the configured maximum."""


class DatabaseError(TingjiError):
    """The history database cannot be reached or refused to work (PostgreSQL down, wrong
    password, psycopg not installed). The message never holds the database's password."""


class ClusterError(TingjiError):
    """The Ray cluster cannot be reached, or its workers died under a file too often."""
