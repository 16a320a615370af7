"""echoic.evaluate: HEAR-protocol evaluation of embedding models (``echoic eval``).

Public API::

    from echoic.evaluate import evaluate, EvalConfig, ProbeConfig
    records = evaluate(["echoic-default", "logmel_stats"], ["tasks/"], EvalConfig(out="results"))

Modules: ``task`` (read HEAR task directories), ``cache`` (embedding cache), ``probes`` (hear /
linear / knn), ``fit`` + ``mlp`` (vectorised probe training), ``metrics`` + ``events``,
``results`` (JSON/CSV/table), ``report`` (HTML), ``hear_module`` (any HEAR API module).
"""

from echoic.evaluate.hear_module import HearModuleModel
from echoic.evaluate.probes import PROTOCOLS, ProbeConfig, run_probe
from echoic.evaluate.runner import EvalConfig, evaluate
from echoic.evaluate.task import HearTask, find_tasks, load_task

__all__ = [
    "PROTOCOLS",
    "EvalConfig",
    "HearModuleModel",
    "HearTask",
    "ProbeConfig",
    "evaluate",
    "find_tasks",
    "load_task",
    "run_probe",
]
