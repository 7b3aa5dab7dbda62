"""Documentation of the options every Kubernetes module of the project takes (module_utils/af_k8s_client.py,
AUTH_ARGUMENT_SPEC); modules use it with extends_documentation_fragment: af_k8s_auth."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - The kubeconfig file to reach the API server with, on the host the module runs on.
      - The default is kubeadm's admin kubeconfig on a control-plane node.
    type: path
    default: /etc/kubernetes/admin.conf
  context:
    description: The kubeconfig context to use (default - the file's current context).
    type: str
  api_timeout:
    description: Seconds each API request may take.
    type: int
    default: 10
requirements:
  - kubernetes (the Python client) on the host that runs the module
"""
