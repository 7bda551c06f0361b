"""``python -m hk8s`` runs the command line."""

from __future__ import annotations

from hk8s.cli import main

if __name__ == "__main__":
    main()
