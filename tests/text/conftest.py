"""Text-tower fixtures: one built pretrained tower per name per session, and the skip rule.

A pretrained tower whose package (the ``text`` extra) is missing is skipped with its one-line
reason — unless ``ECHOIC_REQUIRE_TEXT=1``, where it fails.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

_BUILT: dict[str, object] = {}


def require_tower(name: str) -> None:
    """Skip (or fail under ECHOIC_REQUIRE_TEXT=1) when text tower ``name`` cannot be built here."""
    from echoic.text import TEXT_ENCODERS

    reason = TEXT_ENCODERS.get(name).unavailable_reason()
    if reason:
        if os.environ.get("ECHOIC_REQUIRE_TEXT") == "1":
            pytest.fail(f"ECHOIC_REQUIRE_TEXT=1 but {reason}")
        pytest.skip(reason)


@contextmanager
def no_network() -> Iterator[None]:
    """Any connection attempt inside fails the test: towers must build from installed files."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a text tower tried to reach the network: {args}")

    original = socket.socket.connect
    socket.socket.connect = refuse  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect = original  # type: ignore[method-assign]


def build_offline(name: str, **config: object):  # type: ignore[no-untyped-def]
    """Build tower ``name`` with the network refused (skipped when unavailable)."""
    require_tower(name)
    from echoic.text import build_text_encoder

    with no_network():
        return build_text_encoder(name, **config)


def frozen_tower(name: str):  # type: ignore[no-untyped-def]
    """The frozen tower ``name``, built once per session, offline."""
    if name not in _BUILT:
        _BUILT[name] = build_offline(name)
    return _BUILT[name]


@pytest.fixture(scope="session")
def minilm():  # type: ignore[no-untyped-def]
    return frozen_tower("minilm")


@pytest.fixture(scope="session")
def e5_small():  # type: ignore[no-untyped-def]
    return frozen_tower("e5_small")


@pytest.fixture(scope="session")
def offline_builder():  # type: ignore[no-untyped-def]
    """``offline_builder(name, **config)``: a fresh tower built with the network refused."""
    return build_offline
