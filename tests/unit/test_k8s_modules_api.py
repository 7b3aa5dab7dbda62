"""The Kubernetes modules end to end through the real kubernetes client and Ansible, against a stand-in API
server: a few endpoints of the Kubernetes REST API (secrets of kube-system, nodes, version) served from memory,
with a kubeconfig pointing at them.

CI cannot run a cluster (no registry carries Kubernetes' server binaries); this proves the modules' requests,
check mode, diff, idempotence and failure messages as Ansible runs them. The live check against a real cluster
is recorded in the issue's closing note.
"""

import base64
import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SECRETS = "/api/v1/namespaces/kube-system/secrets"


class FakeApi:
    """State of the stand-in API server."""

    def __init__(self):
        self.secrets: dict[str, dict] = {}
        self.nodes: list[dict] = []
        self.requests: list[str] = []


def make_handler(api: FakeApi):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, code: int, body: dict):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            api.requests.append(f"GET {self.path}")
            path = self.path.split("?")[0]
            if path == SECRETS:
                self._send(200, {"kind": "SecretList", "apiVersion": "v1", "items": list(api.secrets.values())})
            elif path == "/api/v1/nodes":
                self._send(200, {"kind": "NodeList", "apiVersion": "v1", "items": api.nodes})
            elif path.rstrip("/") == "/version":
                self._send(200, {"major": "1", "minor": "36", "gitVersion": "v1.36.2", "platform": "linux/amd64"})
            else:
                self._send(404, {"kind": "Status", "status": "Failure", "message": "not found", "code": 404})

        def do_POST(self):
            api.requests.append(f"POST {self.path}")
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            data = {k: base64.b64encode(v.encode()).decode() for k, v in (body.pop("stringData", None) or {}).items()}
            body["data"] = {**body.get("data", {}), **data}
            api.secrets[body["metadata"]["name"]] = body
            self._send(201, body)

        def do_DELETE(self):
            api.requests.append(f"DELETE {self.path}")
            name = self.path.split("?")[0].rsplit("/", 1)[-1]
            if api.secrets.pop(name, None) is None:
                self._send(404, {"kind": "Status", "status": "Failure", "message": f"{name} not found", "code": 404})
            else:
                self._send(200, {"kind": "Status", "status": "Success"})

    return Handler


@pytest.fixture
def api(tmp_path):
    state = FakeApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "admin.conf"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "af", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
                "users": [{"name": "admin", "user": {"token": "not-checked-here"}}],
                "contexts": [{"name": "af", "context": {"cluster": "af", "user": "admin"}}],
                "current-context": "af",
            }
        )
    )
    state.kubeconfig = str(kubeconfig)
    yield state
    server.shutdown()


def run_module(module: str, args: dict, *flags: str) -> tuple[int, dict, str]:
    """ansible localhost -m <module> (one line of JSON result per host with -o is awkward: use the json callback)."""
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_STRATEGY": "linear",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "localhost", "-m", module, "-a", json.dumps(args), *flags],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    match = re.search(r"^\{.*\}\s*$", result.stdout, re.MULTILINE | re.DOTALL)
    document = json.loads(match.group(0)) if match else {}
    host = ((document.get("plays") or [{}])[0].get("tasks") or [{}])[0].get("hosts", {}).get("localhost", {})
    return result.returncode, host, output


def test_bootstrap_token_check_mode_create_keep_and_expire(api):
    args = {"description": "af nodes join", "kubeconfig": api.kubeconfig, "return_token": True}

    rc, dry, output = run_module("k8s_bootstrap_token", args, "--check", "--diff")
    assert rc == 0, output
    assert dry["changed"] is True and "token" not in dry and api.secrets == {}

    rc, first, output = run_module("k8s_bootstrap_token", args, "--diff")
    assert rc == 0, output
    assert first["changed"] is True
    token_id, token_secret = first["token"].split(".")
    assert re.fullmatch(r"[a-z0-9]{6}", token_id) and re.fullmatch(r"[a-z0-9]{16}", token_secret)
    assert first["token_id"] == token_id
    stored = api.secrets[f"bootstrap-token-{token_id}"]
    assert stored["type"] == "bootstrap.kubernetes.io/token"
    assert base64.b64decode(stored["data"]["token-secret"]).decode() == token_secret
    # The diff names the token, never its secret.
    assert token_secret not in json.dumps(first["diff"])
    assert first["diff"]["after"]["tokens"][0]["token_id"] == token_id

    rc, again, output = run_module("k8s_bootstrap_token", {**args, "return_token": False})
    assert rc == 0, output
    assert again["changed"] is False and again["token_id"] == token_id and "token" not in again
    assert token_secret not in output

    rc, gone, output = run_module("k8s_bootstrap_token", {**args, "state": "absent"})
    assert rc == 0, output
    assert gone["changed"] is True and gone["removed"] == [token_id] and api.secrets == {}
    rc, still_gone, output = run_module("k8s_bootstrap_token", {**args, "state": "absent"})
    assert rc == 0 and still_gone["changed"] is False, output


def test_cluster_info_waits_and_fails_naming_the_node(api):
    node = {
        "metadata": {"name": "k8s-cp", "labels": {"node-role.kubernetes.io/control-plane": ""}},
        "spec": {"podCIDR": "10.244.0.0/24"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.36.2"}},
    }
    worker = {
        "metadata": {"name": "k8s-node1"},
        "spec": {},
        "status": {"conditions": [{"type": "Ready", "status": "False"}], "nodeInfo": {"kubeletVersion": "v1.36.2"}},
    }
    api.nodes = [node]
    rc, ready, output = run_module(
        "k8s_cluster_info", {"kubeconfig": api.kubeconfig, "wait_for": {"all_ready": True, "kubelet_version": "v1.36"}}
    )
    assert rc == 0, output
    assert ready["cluster"]["server_version"] == "v1.36.2"
    assert ready["cluster"]["nodes"][0]["roles"] == ["control-plane"]

    api.nodes = [node, worker]
    rc, failed, output = run_module(
        "k8s_cluster_info",
        {"kubeconfig": api.kubeconfig, "wait_for": {"node_names": ["k8s-node1"]}, "timeout": 2, "poll_interval": 0.5},
    )
    assert rc != 0, output
    assert failed["msg"] == "cluster not ready after 2 s: nodes not Ready: k8s-node1"


def test_a_missing_kubeconfig_is_named(tmp_path):
    rc, failed, output = run_module("k8s_cluster_info", {"kubeconfig": str(tmp_path / "nope.conf")})
    assert rc != 0, output
    assert failed["msg"].startswith(f"cannot load the kubeconfig {tmp_path / 'nope.conf'}: ")
