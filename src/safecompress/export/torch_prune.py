"""``torch-prune``: the pruned model as ``torch.nn.utils.prune`` keeps it.

For every pruned parameter ``<module>.<name>`` the file holds ``<module>.<name>_orig`` (the weights) and
``<module>.<name>_mask`` (1.0 kept, 0.0 pruned, the weight's dtype), the names ``prune`` gives them;
every other tensor of the state dict is stored as it is. To rebuild the pruned module::

    import json
    from safetensors import safe_open
    from safetensors.torch import load_file
    from torch.nn.utils import prune

    state = load_file(path)
    with safe_open(path, "pt") as f:
        pruned = json.loads(f.metadata()["pruned"])  # ["<module>.<name>", ...]
    for full in pruned:
        module_name, _, name = full.rpartition(".")
        prune.custom_from_mask(model.get_submodule(module_name), name, state[f"{full}_mask"])
    model.load_state_dict(state)

(``model`` is the architecture named by the ``model`` metadata, see :mod:`.dense`.) The module then
computes ``weight = weight_orig * weight_mask`` before every forward, as any ``prune`` method leaves it,
and ``prune.remove`` makes the weights plain parameters again.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import torch
from safetensors.torch import save as st_save
from torch import nn

from ..errors import SafeCompressError
from .base import ExportSource, register_format

log = logging.getLogger(__name__)

FORMAT = "safecompress-torch-prune-v1"


@register_format(
    "torch-prune",
    "model-torch-prune.safetensors",
    "safetensors with <layer>.weight_orig + <layer>.weight_mask as torch.nn.utils.prune names them",
)
def write_torch_prune(model: nn.Module, example: torch.Tensor, source: ExportSource) -> tuple[bytes, dict[str, Any]]:
    params = dict(model.named_parameters())
    state: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        mask = source.masks.get(key)
        if mask is None:
            state[key] = value.clone().contiguous()
            continue
        if key not in params:
            raise SafeCompressError(
                f"{key} has a mask but is not a parameter, so torch.nn.utils.prune cannot prune it; "
                "export this model with --format dense instead"
            )
        if tuple(mask.shape) != tuple(value.shape):
            raise SafeCompressError(f"the mask of {key} does not fit its weight; the model file is corrupt")
        mask = mask.to(device="cpu", dtype=torch.bool)
        state[f"{key}_orig"] = value.clone().contiguous()  # already zero where pruned
        state[f"{key}_mask"] = mask.to(value.dtype).contiguous()
    if not source.masks:
        log.warning("the run's model has no pruned weights: the torch-prune file holds the dense model only")
    header = {**source.header(FORMAT), "pruned": json.dumps(sorted(source.masks))}
    return st_save(state, metadata=header), {"pruned": len(source.masks)}
