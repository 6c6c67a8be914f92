"""What the environment tells about W&B: whether an API key is configured, and whether
W&B accepts the WANDB_* variables that wandb.init will read.

One home for it, so that the tracker (which logs runs) and the store (which resolves
references on W&B) can both ask without either depending on the other.
"""

from __future__ import annotations

import netrc
import os
import re
from typing import Mapping
from urllib.parse import urlparse

from charexp.errors import CharexpError

WANDB_HOST = "api.wandb.ai"


REACH_TIMEOUT_S = 4.0  # a W&B server that has not answered by then is treated as unreachable


def base_url() -> str:
    """The W&B server runs talk to: $WANDB_BASE_URL, else W&B's cloud."""
    return os.environ.get("WANDB_BASE_URL") or f"https://{WANDB_HOST}"


def server_answers(url: str | None = None, timeout: float = REACH_TIMEOUT_S) -> bool:
    """True when the W&B server answers an HTTP request within `timeout` seconds (any status: it is there).

    A cluster node after `wandb login` on the login node has a key and no route: wandb.init would retry for
    about 90 s and die with a traceback. The probe runs in a daemon thread so that a DNS lookup that hangs
    (which urllib's timeout does not cover) costs no more than `timeout` either. Proxies in the environment
    (HTTPS_PROXY, ...) are used, as wandb uses them."""
    import threading
    import urllib.error
    import urllib.request

    answered: list[bool] = []

    def probe() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(url or base_url(), method="HEAD"), timeout=timeout).close()
            answered.append(True)
        except urllib.error.HTTPError:  # an error status is still an answer
            answered.append(True)
        except Exception:  # refused, no such host, timed out, TLS failure: no usable server
            answered.append(False)

    thread = threading.Thread(target=probe, name="wandb-reachable", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answered and answered[0])


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


# Values worth hiding: a key, a token, or a proxy URL with a password in it.
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PROXY|HEADERS")


def check_wandb_env(environ: Mapping[str, str] | None = None, overrides: Mapping[str, str] | None = None) -> None:
    """Refuse, in one sentence, a WANDB_* variable whose value wandb.init would reject with a traceback.

    wandb.init loads every WANDB_* variable into its pydantic Settings before it looks at its own
    arguments, so `WANDB_MODE=` or `WANDB_MODE=ofline` fails there even though the tracker passes
    mode=. Rather than copy wandb's rules (dozens of variables: modes, booleans, URLs, ids), ask
    wandb's own Settings, one variable at a time in the environment's order, as wandb.init does.
    `overrides` are what the caller will set for its runs (charexp sweep's offline runs get
    WANDB_MODE=offline). Importing wandb here costs nothing extra: every caller goes on to start W&B runs.
    """
    from wandb.sdk.wandb_settings import Settings

    environ = {**(os.environ if environ is None else environ), **(overrides or {})}
    settings = Settings()
    for name, value in environ.items():
        if not name.startswith("WANDB_"):
            continue
        try:
            settings.update_from_env_vars({name: value})
        except Exception as err:  # pydantic's ValidationError, or wandb's UsageError from a validator
            shown = "(value hidden)" if SECRET_NAME.search(name) else f"{value[:60]!r}"
            raise CharexpError(f"W&B refuses the environment variable {name}={shown} ({_reason(err)}); "
                               f"set it to a value W&B accepts or remove it (unset {name})") from None


def _reason(err: Exception) -> str:
    """wandb's own words for the refusal, without pydantic's decoration."""
    errors = getattr(err, "errors", None)
    text = errors()[0]["msg"] if callable(errors) else (str(err).splitlines() or [type(err).__name__])[0]
    text = text.removeprefix("Value error, ").rstrip(".")
    # "Input should" -> "input should"; "API key" stays
    return text[:1].lower() + text[1:] if text[1:2].islower() else text
