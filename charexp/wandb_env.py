"""What the environment tells about W&B: whether an API key is configured.

One home for it, so that the tracker (which logs runs) and the store (which resolves
references on W&B) can both ask without either depending on the other.
"""

from __future__ import annotations

import netrc
import os
from urllib.parse import urlparse

WANDB_HOST = "api.wandb.ai"


def has_api_key() -> bool:
    """An API key in WANDB_API_KEY or a netrc entry for the W&B host (what `wandb login` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", f"https://{WANDB_HOST}")).hostname or WANDB_HOST
    try:
        path = os.environ.get("NETRC") or None
        return netrc.netrc(path).authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
