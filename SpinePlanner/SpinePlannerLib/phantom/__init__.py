"""The digital spine-tumor phantom: anatomy, rasterisation, case files with truth, Slicer sample data."""
