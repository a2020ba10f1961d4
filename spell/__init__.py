"""SPELL: self-play RL for long-context language models (arXiv 2509.23863).

Pure Python + torch. Never imports Django, `webapp` or `workers`.
"""

__version__ = "0.1.0"
