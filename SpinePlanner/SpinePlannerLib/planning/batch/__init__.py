"""Batch planning of cohorts on Dask: case discovery, the per-case task, the runner, cohort tables."""
