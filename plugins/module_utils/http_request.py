# Copyright: pmoves.fleet contributors
# Apache License 2.0 (see galaxy.yml)
"""The one way this collection's module_utils make an HTTP request: Ansible's ``open_url``.

``open_url`` (``ansible.module_utils.urls``) needs no module object, so the pure clients that use it
(the Ollama API client, the compose health probe) stay importable and unit-testable on their own.
The options keep plain urllib's behaviour: proxies from the environment, certificates validated,
redirects followed as urllib does, no credentials read from ``~/.netrc``. An HTTP error status
raises ``urllib.error.HTTPError``; an unreachable host ``urllib.error.URLError`` or ``OSError``;
``URL_ERRORS`` lists everything a caller catches to report "cannot reach".
"""

from __future__ import annotations

import http.client
import urllib.error
from typing import Any

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url

# Failures to reach the server at all (HTTPError, a subclass of URLError, is caught before these).
URL_ERRORS: tuple[type[Exception], ...] = (urllib.error.URLError, OSError, http.client.HTTPException,
                                           UrlsConnectionError)


def http_open(url: str, method: str = "GET", data: bytes | None = None, headers: dict[str, str] | None = None,
              timeout: float = 10.0) -> Any:
    """Send one request and return the open response (``status``, ``read()``, ``readline()``, ``close()``)."""
    return open_url(url, data=data, headers=headers or {}, method=method, timeout=timeout, use_netrc=False,
                    follow_redirects="urllib2")
