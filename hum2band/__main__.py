"""``python -m hum2band`` runs the command line (same as the ``hum2band`` script)."""

from .app.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
