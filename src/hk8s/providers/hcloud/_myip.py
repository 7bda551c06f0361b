"""The operator's public IP, for firewall sources written as ``current``.

Asks a what-is-my-IP service that answers with the address as plain text (default
``https://ipv4.icanhazip.com``; ``HK8S_MY_IP_URL`` overrides it, and the simulator serves one).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os

import requests

from hk8s.errors import UnavailableError

__all__ = ["DEFAULT_MY_IP_URL", "MY_IP_URL_ENV", "fetch_public_ip"]

MY_IP_URL_ENV = "HK8S_MY_IP_URL"
DEFAULT_MY_IP_URL = "https://ipv4.icanhazip.com"


def _fetch(url: str, timeout: float) -> str:
    try:
        response = requests.get(url, timeout=timeout)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise UnavailableError(
            f"cannot look up this machine's public IP at {url}: {type(exc).__name__}",
            hint=f"set {MY_IP_URL_ENV}, or list CIDRs instead of 'current' in firewall sources",
        ) from exc
    text = response.text.strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError as exc:
        raise UnavailableError(
            f"{url} did not answer with an IP address: {text[:40]!r}",
            hint=f"set {MY_IP_URL_ENV} to a service that returns the address as plain text",
        ) from exc


async def fetch_public_ip(url: str | None = None, *, timeout: float = 10.0) -> str:
    """The public IP address this machine's traffic comes from."""
    target = url or os.environ.get(MY_IP_URL_ENV) or DEFAULT_MY_IP_URL
    return await asyncio.to_thread(_fetch, target, max(2.0, timeout))
