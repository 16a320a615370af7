"""Public checkpoints → echoic model directories (``echoic convert``, docs/converting.md).

One module per source format (``convert/<source>.py``), each a registered
:class:`~echoic.convert.base.Converter` with a parity test against its reference implementation
(``tests/convert/``). ``echoic.load(path)`` converts a public checkpoint on first use and caches it
(:func:`echoic.convert.registry.converted_dir`).

>>> from echoic.convert import convert
>>> convert("wavlm-base-plus/", "wavlm-base-plus-echoic/")   # format detected  # doctest: +SKIP
"""

from echoic.convert.base import ConversionError, Converter
from echoic.convert.registry import AUTO, CONVERTERS, convert, detect, find_converter
from echoic.convert.safe_pickle import UnsafePickleError

__all__ = [
    "AUTO",
    "CONVERTERS",
    "ConversionError",
    "Converter",
    "UnsafePickleError",
    "convert",
    "detect",
    "find_converter",
]
