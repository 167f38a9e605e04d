"""How uvicorn serves the app: which proxy headers it may believe."""

from __future__ import annotations

from typing import Any

from ..settings import Settings


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn options: X-Forwarded-For/-Proto only from `trusted_proxies`, never by default.

    uvicorn trusts those headers from 127.0.0.1 unless told otherwise, which lets any local client
    (or a proxy that passes the header through) pick its own address, and with it its rate-limit
    bucket and the address in the access log.
    """
    if not settings.trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(settings.trusted_proxies)}
