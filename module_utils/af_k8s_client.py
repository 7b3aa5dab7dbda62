"""The client layer of the project's Kubernetes modules (k8s_bootstrap_token, k8s_cluster_info).

One place that knows how to reach the API server: the shared options (kubeconfig, context, timeout), the
import of the ``kubernetes`` Python client with a clear failure when it is missing, the API objects, and
the text of an API error. The modules' logic (af_k8s_bootstrap_token, af_k8s_cluster) works on plain dicts
shaped like the API's JSON and never imports the client.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable

# Options every Kubernetes module of the project takes; documented once in the doc fragment
# plugins/doc_fragments/af_k8s_auth.py (extends_documentation_fragment: af_k8s_auth).
AUTH_ARGUMENT_SPEC = {
    "kubeconfig": {"type": "path", "default": "/etc/kubernetes/admin.conf"},
    "context": {"type": "str"},
    "api_timeout": {"type": "int", "default": 10},
}

MISSING_CLIENT = (
    "the kubernetes Python client is not installed on the host this module runs on: install Debian's "
    "python3-kubernetes (or pip install kubernetes) there, or run the task where it is"
)


def import_kubernetes(fail: Callable[..., None]):
    """The kubernetes package, or fail(msg=...) naming what to install."""
    try:
        import kubernetes  # noqa: PLC0415 - optional on the target; imported where it is needed
    except ImportError:
        fail(msg=MISSING_CLIENT, changed=False)
        raise  # fail() exits; this only satisfies type checkers
    return kubernetes


class Cluster:
    """The API objects of one cluster, built from a kubeconfig, and dict conversion of what they return."""

    def __init__(self, params: dict, fail: Callable[..., None]):
        kubernetes = import_kubernetes(fail)
        self.timeout = params["api_timeout"]
        self.ApiException = kubernetes.client.exceptions.ApiException
        try:
            self.api_client = kubernetes.config.new_client_from_config(
                config_file=params["kubeconfig"], context=params.get("context")
            )
        except Exception as exc:  # a missing or unreadable kubeconfig, an unknown context
            fail(msg=f"cannot load the kubeconfig {params['kubeconfig']}: {error_text(exc)}", changed=False)
        self.core = kubernetes.client.CoreV1Api(self.api_client)
        self.version = kubernetes.client.VersionApi(self.api_client)

    def get(self, call: Callable, *args, **kwargs) -> dict:
        """One read request's JSON as the API server sent it (camelCase keys). Not through the client's models:
        they refuse objects with fields they do not know or lack, which a server of another minor version sends."""
        response = call(*args, _request_timeout=self.timeout, _preload_content=False, **kwargs)
        return json.loads(response.data)

    def is_not_found(self, exc: BaseException) -> bool:
        return isinstance(exc, self.ApiException) and exc.status == 404


def error_text(exc: BaseException) -> str:
    """One line about a failed request: the API's status and message when it sent one."""
    status = getattr(exc, "status", None)
    body = getattr(exc, "body", None)
    if status is not None:
        message = getattr(exc, "reason", "") or ""
        with contextlib.suppress(TypeError, ValueError, AttributeError):
            message = json.loads(body).get("message") or message
        return f"HTTP {status}: {message}".strip()
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
