"""``python -m hum2band.app.serve`` runs the web app (same as ``hum2band serve``)."""

from . import main

if __name__ == "__main__":
    raise SystemExit(main())
