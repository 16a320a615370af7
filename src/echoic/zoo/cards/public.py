"""The cards of the public checkpoints echoic converts (declared in :mod:`echoic.zoo.public`)."""

from __future__ import annotations

from echoic.cards import register_card
from echoic.zoo.public import PUBLIC

for _card in PUBLIC:
    register_card(_card)
