"""One TLS context for every HTTP client the harness opens.

httpx builds a new `ssl.SSLContext` for each `Client` (loading certifi's CA bundle), about
30 ms of CPU, even when the client only ever speaks plain HTTP on loopback: a sandbox opens
one client per node at each start. An `SSLContext` may be shared between clients and
threads once configured, so the harness builds httpx's default one once and passes it as
`verify`. Certificates are checked exactly as by httpx's default (`SSL_CERT_FILE` and
`SSL_CERT_DIR` are read when the context is first built).
"""

from __future__ import annotations

import ssl
from functools import cache

import httpx


@cache
def shared_tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()
