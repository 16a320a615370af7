"""SSL objectives, one file per method: ``(encoder, features) → ObjectiveOutput(loss, logs)``.

``build_objective(name, encoder, config)`` builds a registered objective (``mae``, ``eat``,
``ssast``, ``m2d``, ``byol_a``, ``tera``, ``data2vec2``, ``wavjepa``, ``asit``, …); see
:class:`echoic.objectives.base.Objective` for the contract.
"""

from echoic.objectives.base import OBJECTIVES, Objective, build_objective

__all__ = ["OBJECTIVES", "Objective", "build_objective"]
