"""Pure index samplers for masked prediction: which patch tokens each item hides.

``build_masker(name, **options)(batch, grid, generator)`` → :class:`MaskSample` with exact, equal
counts per item. Registered samplers: ``random``, ``group_random``, ``inverse_block`` (data2vec 2.0
/ EAT), ``cluster`` (SSAST), ``time_span``, ``freq_span``.
"""

from echoic.masking.base import MASKERS, Masker, MaskSample, build_masker, masked_count
from echoic.masking.cluster import ClusterMask
from echoic.masking.inverse_block import InverseBlockMask
from echoic.masking.spans import FreqSpanMask, TimeSpanMask
from echoic.masking.uniform import GroupRandomMask, RandomMask

__all__ = [
    "MASKERS",
    "ClusterMask",
    "FreqSpanMask",
    "GroupRandomMask",
    "InverseBlockMask",
    "MaskSample",
    "Masker",
    "RandomMask",
    "TimeSpanMask",
    "build_masker",
    "masked_count",
]
