"""Whether the Hugging Face Hub can be reached, and its local-cache-only mode.

Without network, huggingface_hub retries every request for about 20 s before it gives up,
and logs each retry. Where the hub cannot be reached, :func:`offline_when_unreachable`
switches huggingface_hub and datasets to their offline mode (what HF_HUB_OFFLINE=1 does at
start-up) for the code inside it, so a dataset that is in the local cache still loads and
one that is not fails at once.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from urllib.parse import urlparse

DEFAULT_ENDPOINT = "https://huggingface.co"


def offline_requested() -> bool:
    """True when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) asks for offline mode."""
    values = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return any(v.strip().lower() in ("1", "true", "yes", "on") for v in values)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub's endpoint (HF_ENDPOINT, default huggingface.co)
    opens within `timeout` seconds."""
    url = urlparse(os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT)
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def offline_when_unreachable(timeout: float = 3.0) -> Iterator[bool]:
    """Run the block in offline mode when offline mode was asked for or the hub cannot be
    reached; yields whether it is offline. The libraries read their flag when a request is
    made, so setting it here (and restoring it after) takes effect at once."""
    if offline_requested():
        yield True
        return
    if hub_reachable(timeout):
        yield False
        return
    import datasets.config
    import huggingface_hub.constants

    saved = (huggingface_hub.constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE)
    huggingface_hub.constants.HF_HUB_OFFLINE = True
    datasets.config.HF_HUB_OFFLINE = True
    try:
        yield True
    finally:
        huggingface_hub.constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = saved


_probed: list[bool] = []  # the one probe of this process


def local_cache_only_if_unreachable(timeout: float = 3.0) -> bool:
    """Probe the hub once per process; when it cannot be reached, switch this process (and
    the notebooks it starts) to huggingface_hub's offline mode for good, so that a model
    in the local cache loads at once instead of after a minute of retries per file.
    Returns whether the process is offline."""
    if offline_requested():
        return True
    explicit = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("0", "false", "no", "off")
    proxied = any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY"))
    if explicit or proxied:  # asked to stay online, or a proxy the TCP probe cannot see
        return False
    if not _probed:
        _probed.append(hub_reachable(timeout))
    if _probed[0]:
        return False
    import huggingface_hub.constants

    os.environ["HF_HUB_OFFLINE"] = "1"
    huggingface_hub.constants.HF_HUB_OFFLINE = True
    try:
        import datasets.config

        datasets.config.HF_HUB_OFFLINE = True
    except ImportError:  # pragma: no cover - datasets comes with sentence-transformers[train]
        pass
    return True
