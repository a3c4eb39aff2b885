"""Vessel analysis on angiography: vesselness, centerline graph, feeders, spinal arteries."""
