"""What the two transformer generators share: device/dtype choice, model loading with a clear offline error, and
length-sorted batching."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from podsearch.models import ModelError, pick_device, resolve_model


def device_and_dtype(requested: str = "auto"):
    """cuda in bf16 (fp16 where bf16 is unsupported), else cpu in float32: half precision on CPU is slower."""
    import torch

    device = pick_device(requested)
    if device.startswith("cuda"):
        return device, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return device, torch.float32


def load_pretrained(loader: Callable[..., Any], spec: str, what: str, **kwargs) -> Any:
    """`loader.from_pretrained(resolve_model(spec))`, turning the hub's offline/not-found errors into one line."""
    source = resolve_model(spec)
    try:
        return loader.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"cannot load the {what} '{spec}' (resolved to '{source}'): {str(exc).rstrip('.')}. A hub id needs internet "
            f"access (or a filled Hugging Face cache); offline, set querygen.<method>.model to a local folder or "
            f"to package:NAME of an installed model package."
        ) from None


