"""The ``spineplan`` command line."""
