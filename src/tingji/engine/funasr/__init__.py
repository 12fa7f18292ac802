"""The FunASR backend: Paraformer, SeACo-Paraformer, SenseVoice and Fun-ASR-Nano through the
``funasr`` package (the ``funasr`` extra, with PyTorch).

``catalog`` knows the model names and finds (or fetches) model directories, ``results`` turns
FunASR's answers into timed pieces, and ``backend`` loads a model and registers the backend.
Nothing here imports torch or funasr until a model is loaded.
"""
