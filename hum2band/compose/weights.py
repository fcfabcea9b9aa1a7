"""Shipped model weights: :func:`hum2band.files.weights.load_once` (it moved to ``files`` so that
the listen stage can load its beat model too)."""

from __future__ import annotations

from ..files.weights import load_once

__all__ = ["load_once"]
