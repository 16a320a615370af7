"""The state-dict hooks of a tower built from a package's weights (``echoic.text.base``).

Its ``state_dict`` leaves out the package's weights that do not train (:func:`drop_frozen_base`);
its ``load_state_dict`` first checks the saved digest of those weights against the installed
package's, then puts the left-out weights back from the tower itself (:func:`restore_frozen_base`),
so ``strict=True`` loading works on checkpoints that hold only the trained part. The hooks act on
every ``state_dict`` call of any module holding the tower (an objective, Lightning).
"""

from __future__ import annotations

from typing import Any

import torch

from echoic.errors import CheckpointError

__all__ = ["BASE_DIGEST", "drop_frozen_base", "frozen_base", "restore_frozen_base"]

BASE_DIGEST = "base_weights_sha256"
"""The buffer (uint8, 32) holding the sha256 of the package weights a pretrained tower was built on."""


def frozen_base(module: Any) -> dict[str, torch.Tensor]:
    """The package's weights that do not train: name → parameter."""
    params = dict(module.named_parameters())
    return {
        name: params[name]
        for name in sorted(module._base_names)
        if name in params and not params[name].requires_grad
    }


def drop_frozen_base(
    module: Any, state_dict: dict[str, Any], prefix: str, local_metadata: Any
) -> None:
    """State-dict hook: leave out the package's weights that do not train (they load from it)."""
    for name in frozen_base(module):
        state_dict.pop(prefix + name, None)


def restore_frozen_base(
    module: Any,
    state_dict: dict[str, Any],
    prefix: str,
    local_metadata: Any,
    strict: bool,
    missing_keys: list[str],
    unexpected_keys: list[str],
    error_msgs: list[str],
) -> None:
    """Load hook: check the saved base digest, then fill the frozen weights left out by
    :func:`drop_frozen_base` with the ones this tower loaded from its package."""
    saved = state_dict.get(prefix + BASE_DIGEST)
    if saved is not None:
        ours = bytes(getattr(module, BASE_DIGEST).tolist()).hex()
        theirs = bytes(saved.tolist()).hex()
        if ours != theirs:
            raise CheckpointError(
                f"text tower {module.name!r}: the checkpoint was trained on base weights with "
                f"sha256 {theirs[:16]}…, but {module.package} {module.package_version} installed "
                f"here has {ours[:16]}…. Install the {module.package} version named in the "
                "checkpoint's text_tower.json (package_version)."
            )
    for name, param in frozen_base(module).items():
        state_dict.setdefault(prefix + name, param.detach())
