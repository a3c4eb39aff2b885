"""Segmentation of cord, CSF/thecal sac, tumor, cyst/edema and vertebrae with levels (classical engines and MONAI)."""
