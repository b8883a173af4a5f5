"""Example models that cvagents rolls out through the adapter seam (importable from the repo root)."""
