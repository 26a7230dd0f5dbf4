"""The build graph's steps: what `doit setup` runs, one module each (see dodo.py's GRAPH)."""
