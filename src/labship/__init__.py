"""labship: reproducible data experiments (compress, build, notebook, data)."""

__version__ = "0.1.0"
