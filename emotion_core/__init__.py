"""emotion_core: face and voice emotion recognition with explanations (no Streamlit here)."""

from .constants import EMOTIONS

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "__version__"]
