"""``make bench``: tingji measured side by side with plain faster-whisper, in one run.

``python -m benchmarks`` runs them all; ``python -m benchmarks long hotwords`` a subset.
Each prints a table and writes ``bench-output/<name>.json``.
"""
