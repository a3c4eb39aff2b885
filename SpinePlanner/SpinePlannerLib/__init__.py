"""SpinePlanner library: the Slicer-independent core of the spine tumor planner.

Layers (see ARCHITECTURE in the README):

* L1 algorithm modules (``volume``, ``geometry``, ``imageio``, ``phantom`` …) take numpy arrays
  plus a 4x4 ``ijk -> RAS`` affine and return arrays and numbers. They never import ``slicer``.
* L2 MRML modules (``headless``, ``mrml_*``, ``pipeline``) take a ``vtkMRMLScene`` explicitly.
"""

__version__ = "0.1.0"
