"""The zoo's model cards: one module per baseline / peer (or family), discovered by name.

A card module declares what a model is (name, kind, sizes, rate, licence, origin, what it needs)
and builds nothing: ``build`` is a lazy reference (:func:`echoic.cards.lazy`) to the implementation
module beside this package, so that listing models (``echoic models``) imports no implementation
and no torch (``tests/cli/test_cli_imports.py`` holds every card module to that). A new zoo model is
its implementation module in ``echoic.zoo`` plus its card here. Constants both need (install
hints, sample rates, the encoder name a fitted directory records) live in the card module.
"""
