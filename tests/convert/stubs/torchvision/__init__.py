"""A stand-in ``torchvision`` for timm 0.4.5 (the AST / SSAST reference code), test-only.

torchvision's compiled parts do not load beside the CPU torch here, and timm 0.4.5 only imports
it for its image-data helpers (``timm.data.transforms``), which the audio models never call. This
package is on ``sys.path`` only while the reference is imported (``spectrogram_reference.py``).
"""
