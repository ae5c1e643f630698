"""The acoustic stage's former module name: HuBERT is one of the families of `speech.py`."""

from .speech import SpeechEmbedder as HubertEmbedder
from .speech import split_chunks
from .stage import run

__all__ = ["HubertEmbedder", "run", "split_chunks"]
