"""Where the project's shipped files are: the source folder that holds ``hum2band/``."""

from __future__ import annotations

from pathlib import Path

#: The folder that holds ``hum2band/``, ``models/``, ``soundfonts/`` and ``examples/``.
PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: Shipped model weights (``harmony.pt``, ``parts.pt``).
MODELS_DIR = PROJECT_ROOT / "models"
