"""Web viewer of a plan folder (trame-slicer; optional extra ``viewer``)."""
