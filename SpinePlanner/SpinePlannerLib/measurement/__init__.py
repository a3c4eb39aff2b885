"""Tumor measurements: volume, diameters along the cord axis, compartment, canal occupancy, compression."""
