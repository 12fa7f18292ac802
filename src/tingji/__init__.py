"""tingji 听记: a self-hosted speech-to-text workstation.

The library entry point is :class:`tingji.service.Tingji`; the command line is ``tingji``.
"""

__version__ = "0.1.0"
