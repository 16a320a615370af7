"""Stand-in ``torchvision.transforms.functional``: empty (timm 0.4.5 imports it at import time)."""
