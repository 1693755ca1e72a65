"""Developer tools of the mesh lab (run from the repository root, e.g. `python -m tools.manifestcheck`)."""
