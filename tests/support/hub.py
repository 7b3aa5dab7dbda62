"""Drive JupyterHub the way a physicist's browser does, without a browser (tests and benchmarks).

``log_in`` follows the hub's redirect to the OIDC provider, logs in there (tests/support/oidc.py) and
comes back to the hub's callback, which sets the hub's cookie in the session. ``start_server`` asks
for the user's server and waits until JupyterLab itself answers through the proxy (the server's own
OAuth round trip with the hub included), as the browser's spawn-pending page does.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import requests

from tests.support.oidc import TIMEOUT, LoginRefused, _location, authorize


def log_in(session: requests.Session, hub_url: str, issuer: str, username: str, password: str) -> requests.Response:
    """Log username in to the hub; returns the hub's answer to the callback (a redirect when admitted)."""
    start = session.get(f"{hub_url}/hub/oauth_login", allow_redirects=False, timeout=TIMEOUT)
    authorization_url = _location(start)
    if not authorization_url.startswith(issuer):
        raise AssertionError(f"the hub sent the browser to {authorization_url}, not to {issuer}")
    back = authorize(session, issuer, authorization_url, username, password)
    if not back.startswith(f"{hub_url}/hub/oauth_callback"):
        raise LoginRefused(f"the provider sent {username} to {back}, not back to the hub")
    answer = session.get(back, allow_redirects=False, timeout=TIMEOUT)
    if answer.status_code == 403:
        raise LoginRefused(f"the hub refused {username} (HTTP 403)")
    if answer.status_code not in (302, 303):
        raise AssertionError(f"the hub's callback answered HTTP {answer.status_code}: {answer.text[:300]}")
    return answer


def start_server(session: requests.Session, hub_url: str, username: str, timeout: float = 300) -> requests.Response:
    """Start username's server (a logged-in session) and return JupyterLab's page once it is served."""
    session.get(f"{hub_url}/hub/spawn/{username}", timeout=TIMEOUT).raise_for_status()
    return wait_for_lab(session, hub_url, username, timeout)


def wait_for_lab(session: requests.Session, hub_url: str, username: str, timeout: float = 300) -> requests.Response:
    deadline = time.monotonic() + timeout
    lab = f"{hub_url}/user/{username}/lab"
    while True:
        page = session.get(lab, timeout=TIMEOUT)
        if page.status_code == 200 and urlsplit(page.url).path == f"/user/{username}/lab":
            return page
        if time.monotonic() > deadline:
            raise TimeoutError(f"{username}'s JupyterLab not served after {timeout} s (last: {page.url})")
        time.sleep(1)


def hub_api(session: requests.Session, hub_url: str, method: str, path: str) -> requests.Response:
    """A hub REST API call authenticated by the session's cookie (with the XSRF token the hub set)."""

    def hub_xsrf() -> str | None:
        # The hub's own (path /hub/); each user's server sets another under /user/<name>/.
        return next((c.value for c in session.cookies if c.name == "_xsrf" and c.path.startswith("/hub")), None)

    if hub_xsrf() is None:
        session.get(f"{hub_url}/hub/home", timeout=TIMEOUT)
    headers = {"X-XSRFToken": hub_xsrf() or ""}
    return session.request(method, f"{hub_url}/hub/api{path}", headers=headers, timeout=TIMEOUT)


def stop_server(session: requests.Session, hub_url: str, username: str, timeout: float = 120) -> None:
    answer = hub_api(session, hub_url, "DELETE", f"/users/{username}/server")
    if answer.status_code not in (202, 204):
        raise AssertionError(f"stopping {username}'s server: HTTP {answer.status_code} {answer.text[:200]}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        user = hub_api(session, hub_url, "GET", f"/users/{username}").json()
        if not user.get("servers"):
            return
        time.sleep(1)
    raise TimeoutError(f"{username}'s server still there after {timeout} s")
