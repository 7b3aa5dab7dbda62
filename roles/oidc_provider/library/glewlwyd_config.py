#!/usr/bin/python
"""Ansible module: make a Glewlwyd server's OIDC configuration match the inventory (role oidc_provider)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: glewlwyd_config
short_description: Scopes, the OIDC plugin, users and clients of a local Glewlwyd server, over its admin API.
description:
  - Talks to the Glewlwyd admin API on the node (plain HTTP on the loopback address) as the admin account.
  - On the first run the package's initial admin password is replaced by O(admin_password).
  - Every object is read first and written only when it differs, so a second run reports no change. Secrets
    cannot be read back; they are checked by using them (a user logs in, a client calls the token endpoint).
  - Supports check mode and diff mode (secrets never appear in the diff).
options:
  api_url:
    type: str
    default: "http://127.0.0.1:4593/api"
    description: Base URL of the API.
  admin_user: {type: str, default: admin, description: The admin account.}
  admin_password: {type: str, required: true, no_log: true, description: Its password (set on the first run).}
  admin_initial_password:
    type: str
    default: password
    no_log: true
    description: The password the Debian package gives the admin account; used once, to replace it.
  scopes:
    type: list
    elements: dict
    default: []
    description: "Scopes: {name, description}; each needs the password."
  user_module: {type: str, default: database, description: User backend instance that stores the users.}
  user_properties:
    type: list
    elements: str
    default: []
    description: Multi-valued user properties to add (e.g. groups).
  plugin: {type: dict, required: true, description: "The OIDC plugin instance: {name, display_name, parameters}."}
  user_scopes: {type: list, elements: str, default: [], description: Scopes every listed user is given.}
  email_domain: {type: str, default: "", description: "E-mail address of users without one: <name>@<email_domain>."}
  users:
    type: list
    elements: dict
    default: []
    description: "Users: {name, password, full_name, email, groups}; password_file (the controller's) is ignored."
  purge_users:
    type: bool
    default: true
    description: Delete users of O(user_module) that are not listed (never the admin).
  clients:
    type: list
    elements: dict
    default: []
    description: "Confidential clients: {client_id, name, secret, redirect_uris}; secret_file is ignored."
  signing_key: {type: str, required: true, no_log: true, description: PEM private key (RSA) that signs the tokens.}
  signing_public_key: {type: str, required: true, description: Its public key (PEM).}
"""

RETURN = r"""
changes: {description: What was (or would be) changed, one line each; no secret., type: list, returned: always}
"""

import json  # noqa: E402
from urllib.error import HTTPError  # noqa: E402
from urllib.parse import urlencode  # noqa: E402
from urllib.request import Request, urlopen  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

CLIENT_TYPES = ["code", "refresh_token"]
CLIENT_AUTH = ["client_secret_basic", "client_secret_post"]


class Api:
    """One session against the API. Glewlwyd marks its session cookie Secure (browsers reach it over
    HTTPS), so the cookie is kept here by hand for the plain-HTTP loopback address."""

    def __init__(self, base: str):
        self.base = base.rstrip("/")
        self.cookies: dict[str, str] = {}

    def call(self, method: str, path: str, body=None, form=None, headers=None):
        data, hdrs = None, dict(headers or {})
        if body is not None:
            data, hdrs["Content-Type"] = json.dumps(body).encode(), "application/json"
        if form is not None:
            data, hdrs["Content-Type"] = urlencode(form).encode(), "application/x-www-form-urlencoded"
        if self.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        request = Request(self.base + path, data=data, method=method, headers=hdrs)  # noqa: S310 - http(s) API URL
        try:
            with urlopen(request, timeout=30) as response:  # noqa: S310 - http(s) API URL
                status, text, headers = response.status, response.read(), response.headers
        except HTTPError as error:
            status, text, headers = error.code, error.read(), error.headers
        for cookie in headers.get_all("Set-Cookie") or []:
            name, _, value = cookie.split(";", 1)[0].partition("=")
            self.cookies[name.strip()] = value.strip()
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text.decode(errors="replace")

    def login(self, username: str, password: str) -> bool:
        return self.call("POST", "/auth/", {"username": username, "password": password})[0] == 200


def subset_differs(current: dict, desired: dict) -> list[str]:
    """Names of the desired keys whose current value differs (lists compared as sets)."""
    changed = []
    for key, value in desired.items():
        have = current.get(key)
        if isinstance(value, list) and isinstance(have, list) and all(isinstance(v, str) for v in value + have):
            if sorted(value) != sorted(have):
                changed.append(key)
        elif have != value:
            changed.append(key)
    return changed


class Converger:
    def __init__(self, module: AnsibleModule):
        self.module = module
        self.p = module.params
        self.api = Api(self.p["api_url"])
        self.check = module.check_mode
        self.changes: list[str] = []
        self.before: dict = {}
        self.after: dict = {}

    def fail(self, msg: str, status=None, body=None):
        self.module.fail_json(msg=f"{msg} (HTTP {status}: {body})" if status is not None else msg, changes=self.changes)

    def write(self, method: str, path: str, body: dict, what: str):
        self.changes.append(what)
        if self.check:
            return
        status, answer = self.api.call(method, path, body)
        if status != 200:
            self.fail(f"Glewlwyd refused to {what}", status, answer)

    def record(self, key: str, before, after):
        """Remember an object for the diff: only the keys this module sets, string lists sorted."""

        def tidy(obj):
            if not isinstance(obj, dict):
                return obj
            keys = after if isinstance(after, dict) and obj is before else obj
            return {
                k: sorted(v) if isinstance(v, list) and all(isinstance(i, str) for i in v) else v
                for k, v in obj.items()
                if k in keys
            }

        self.before[key], self.after[key] = tidy(before), tidy(after)

    def admin_session(self):
        if self.api.login(self.p["admin_user"], self.p["admin_password"]):
            return
        if not self.api.login(self.p["admin_user"], self.p["admin_initial_password"]):
            self.fail("cannot log in to the Glewlwyd admin API with the admin password (nor the package's initial one)")
        self.write("PUT", f"/user/{self.p['admin_user']}", self.admin_body(), "replace the package's admin password")

    def admin_body(self) -> dict:
        status, user = self.api.call("GET", f"/user/{self.p['admin_user']}")
        if status != 200:
            self.fail("cannot read the admin account", status, user)
        body = {k: v for k, v in user.items() if k != "source"}
        body["password"] = self.p["admin_password"]
        return body

    def scopes(self):
        for scope in self.p["scopes"]:
            name = scope["name"]
            desired = {
                "name": name,
                "display_name": scope.get("display_name", name),
                "description": scope.get("description", name),
                "password_required": True,
                "password_max_age": 0,
                "scheme": {},
            }
            status, current = self.api.call("GET", f"/scope/{name}")
            self.record(f"scope {name}", current if status == 200 else None, desired)
            if status == 404:
                self.write("POST", "/scope/", desired, f"add scope {name}")
            elif status != 200:
                self.fail(f"cannot read scope {name}", status, current)
            elif subset_differs(current, desired):
                self.write("PUT", f"/scope/{name}", desired, f"update scope {name}")

    def user_module(self):
        name = self.p["user_module"]
        status, module = self.api.call("GET", f"/mod/user/{name}")
        if status != 200:
            self.fail(f"cannot read user module {name}", status, module)
        formats = module.setdefault("parameters", {}).setdefault("data-format", {})
        missing = [p for p in self.p["user_properties"] if formats.get(p, {}).get("multiple") is not True]
        if not missing:
            return
        for prop in missing:
            formats[prop] = {
                "multiple": True,
                "read": True,
                "write": True,
                "profile-read": True,
                "profile-write": False,
            }
        self.write("PUT", f"/mod/user/{name}", module, f"add properties {', '.join(missing)} to user module {name}")
        if not self.check:
            self.api.call("PUT", f"/mod/user/{name}/reset")

    def plugin(self):
        desired = dict(self.p["plugin"])
        desired["parameters"] = {
            **desired.get("parameters", {}),
            "key": self.p["signing_key"],
            "cert": self.p["signing_public_key"],
        }
        desired.setdefault("module", "oidc")
        desired.setdefault("enabled", True)
        name = desired["name"]
        status, current = self.api.call("GET", f"/mod/plugin/{name}")
        redact = lambda mod: {  # noqa: E731 - the signing key stays out of the diff
            **(mod or {}),
            "parameters": {k: v for k, v in ((mod or {}).get("parameters") or {}).items() if k != "key"},
        }
        self.record(f"plugin {name}", redact(current) if status == 200 else None, redact(desired))
        if status == 404:
            self.write("POST", "/mod/plugin/", desired, f"add OIDC plugin {name}")
        elif status != 200:
            self.fail(f"cannot read plugin {name}", status, current)
        elif subset_differs(current, desired):
            self.write("PUT", f"/mod/plugin/{name}", desired, f"update OIDC plugin {name}")
            if not self.check:
                self.api.call("PUT", f"/mod/plugin/{name}/reset")

    def users(self):
        listed = set()
        for user in self.p["users"]:
            username = user["name"]
            listed.add(username)
            desired = {
                "username": username,
                "name": user.get("full_name") or username,
                "email": user.get("email")
                or (f"{username}@{self.p['email_domain']}" if self.p["email_domain"] else ""),
                "scope": list(self.p["user_scopes"]),
                "groups": list(user.get("groups") or []),
                "enabled": True,
            }
            status, current = self.api.call("GET", f"/user/{username}")
            self.record(f"user {username}", current if status == 200 else None, desired)
            body = {**desired, "password": user["password"]}
            if status == 404:
                self.write("POST", f"/user/?source={self.p['user_module']}", body, f"add user {username}")
                continue
            if status != 200:
                self.fail(f"cannot read user {username}", status, current)
            differs = subset_differs(current, desired)
            # A password cannot be read back: it is right if the user can log in with it.
            if not Api(self.p["api_url"]).login(username, user["password"]):
                differs.append("password")
            if differs:
                self.write("PUT", f"/user/{username}", body, f"update user {username} ({', '.join(differs)})")
        if self.p["purge_users"]:
            status, everyone = self.api.call("GET", f"/user/?source={self.p['user_module']}&limit=1000")
            if status != 200:
                self.fail("cannot list users", status, everyone)
            for user in everyone:
                name = user.get("username")
                if name not in listed and name != self.p["admin_user"]:
                    self.record(f"user {name}", user, None)
                    self.changes.append(f"delete user {name}")
                    if not self.check:
                        self.api.call("DELETE", f"/user/{name}")

    def client_secret_ok(self, client_id: str, secret: str, redirect_uri: str) -> bool:
        """Right secret: the token endpoint rejects the made-up code; wrong secret: it rejects the client."""
        plugin = self.p["plugin"]["name"]
        _, answer = Api(self.p["api_url"]).call(
            "POST",
            f"/{plugin}/token",
            form={
                "grant_type": "authorization_code",
                "code": "af-probe",
                "redirect_uri": redirect_uri,
                "client_id": client_id,
                "client_secret": secret,
            },
        )
        return isinstance(answer, dict) and answer.get("error") not in ("unauthorized_client", "invalid_client")

    def clients(self):
        for client in self.p["clients"]:
            client_id = client["client_id"]
            desired = {
                "client_id": client_id,
                "name": client.get("name") or client_id,
                "description": client.get("description") or "",
                "enabled": True,
                "confidential": True,
                "scope": [],
                "redirect_uri": list(client["redirect_uris"]),
                "authorization_type": CLIENT_TYPES,
                "token_endpoint_auth_method": CLIENT_AUTH,
            }
            status, current = self.api.call("GET", f"/client/{client_id}")
            self.record(f"client {client_id}", current if status == 200 else None, desired)
            body = {**desired, "password": client["secret"]}
            if status == 404:
                self.write("POST", "/client/?source=database", body, f"add client {client_id}")
                continue
            if status != 200:
                self.fail(f"cannot read client {client_id}", status, current)
            differs = subset_differs(current, desired)
            if not self.client_secret_ok(client_id, client["secret"], desired["redirect_uri"][0]):
                differs.append("secret")
            if differs:
                self.write("PUT", f"/client/{client_id}", body, f"update client {client_id} ({', '.join(differs)})")


def main():
    module = AnsibleModule(
        argument_spec={
            "api_url": {"type": "str", "default": "http://127.0.0.1:4593/api"},
            "admin_user": {"type": "str", "default": "admin"},
            "admin_password": {"type": "str", "required": True, "no_log": True},
            "admin_initial_password": {"type": "str", "default": "password", "no_log": True},
            "scopes": {"type": "list", "elements": "dict", "default": []},
            "user_module": {"type": "str", "default": "database"},
            "user_properties": {"type": "list", "elements": "str", "default": []},
            "plugin": {"type": "dict", "required": True},
            "user_scopes": {"type": "list", "elements": "str", "default": []},
            "email_domain": {"type": "str", "default": ""},
            "users": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "name": {"type": "str", "required": True},
                    "password": {"type": "str", "required": True, "no_log": True},
                    "full_name": {"type": "str"},
                    "email": {"type": "str"},
                    "groups": {"type": "list", "elements": "str", "default": []},
                    "password_file": {"type": "str"},
                },
            },
            "purge_users": {"type": "bool", "default": True},
            "clients": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "client_id": {"type": "str", "required": True},
                    "secret": {"type": "str", "required": True, "no_log": True},
                    "name": {"type": "str"},
                    "redirect_uris": {"type": "list", "elements": "str", "required": True},
                    "secret_file": {"type": "str"},
                },
            },
            "signing_key": {"type": "str", "required": True, "no_log": True},
            "signing_public_key": {"type": "str", "required": True},
        },
        supports_check_mode=True,
    )
    converger = Converger(module)
    converger.admin_session()
    converger.scopes()
    converger.user_module()
    converger.plugin()
    converger.users()
    converger.clients()
    result = {"changed": bool(converger.changes), "changes": converger.changes}
    if module._diff and converger.changes:
        result["diff"] = {
            "before": json.dumps(converger.before, indent=2, sort_keys=True) + "\n",
            "after": json.dumps(converger.after, indent=2, sort_keys=True) + "\n",
        }
    module.exit_json(**result)


if __name__ == "__main__":
    main()
