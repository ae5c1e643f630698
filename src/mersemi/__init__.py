"""mersemi: semi-supervised multimodal emotion recognition, videos to submission."""

__version__ = "0.1.0"
