"""``python -m twin`` runs the command-line interface (the same as the ``twin`` script)."""

from twin.cli import main

if __name__ == "__main__":  # Dask's spawned worker processes import __main__: never re-run the CLI there
    main()
