"""Unit tests of the hub's policy module (roles/jupyterhub/files/af_hub.py), on real files and the
real account database: who may have a server, whether credentials are fit to mount, profiles."""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import sys
from pathlib import Path

import jinja2
import pytest
import yaml

SOURCE = Path(__file__).resolve().parents[2] / "roles" / "jupyterhub" / "files" / "af_hub.py"
spec = importlib.util.spec_from_file_location("af_hub", SOURCE)
af_hub = importlib.util.module_from_spec(spec)
sys.modules["af_hub"] = af_hub  # dataclasses look their module up
spec.loader.exec_module(af_hub)

ME = pwd.getpwuid(os.getuid()).pw_name
PROFILES = [
    {"name": "standard", "display_name": "Standard", "image": "reg:5000/af/notebook:1"},
    {"name": "large", "display_name": "Large <16 GB>", "image": "reg:5000/af/notebook:1", "mem_limit": "16G"},
]


def test_only_facility_users_get_an_account_even_if_the_node_knows_the_name():
    with pytest.raises(af_hub.SpawnRefused, match="root has no facility account"):
        af_hub.facility_account("root", frozenset({"alice"}))
    account = af_hub.facility_account(ME, frozenset({ME}))
    assert (account.uid, account.home) == (os.getuid(), pwd.getpwnam(ME).pw_dir)


def test_a_facility_user_without_a_node_account_is_refused_clearly():
    with pytest.raises(af_hub.SpawnRefused, match="no account on this node"):
        af_hub.facility_account("nobody-here-4711", frozenset({"nobody-here-4711"}))


def test_credentials_must_exist_belong_to_the_user_and_be_private(tmp_path):
    directory = tmp_path / "alice"
    with pytest.raises(af_hub.SpawnRefused, match="no credentials"):
        af_hub.check_credentials(directory, os.getuid())
    directory.mkdir(mode=0o700)
    af_hub.check_credentials(directory, os.getuid())
    with pytest.raises(af_hub.SpawnRefused, match="belongs to UID"):
        af_hub.check_credentials(directory, os.getuid() + 1)
    directory.chmod(0o750)
    with pytest.raises(af_hub.SpawnRefused, match=r"readable by others \(mode 0750\)"):
        af_hub.check_credentials(directory, os.getuid())
    (tmp_path / "link").symlink_to(directory)
    with pytest.raises(af_hub.SpawnRefused, match="not a directory"):
        af_hub.check_credentials(tmp_path / "link", os.getuid())


def test_the_session_env_file_is_read_as_docker_reads_it(tmp_path):
    env = tmp_path / "session.env"
    env.write_text("# comment\n\nAF_COLLECTOR_HOST=head.af.test\nLINK={JUPYTERHUB_SERVICE_PREFIX}proxy/{port}/status\n")
    assert af_hub.read_env_file(env) == {
        "AF_COLLECTOR_HOST": "head.af.test",
        "LINK": "{JUPYTERHUB_SERVICE_PREFIX}proxy/{port}/status",
    }
    env.write_text("NOT A SETTING\n")
    with pytest.raises(ValueError, match="not KEY=VALUE"):
        af_hub.read_env_file(env)


def test_only_the_users_own_credentials_are_mounted_and_read_only():
    account = af_hub.Account("alice", 6001, 6001, "/home/alice")
    volumes = af_hub.container_volumes(account, "/var/lib/af/credentials", "/usr/local/share/ca-certificates/ca.crt")
    assert volumes["/var/lib/af/credentials/alice"] == {"bind": "/etc/af/credentials", "mode": "ro"}
    assert not any(path.startswith("/var/lib/af/credentials") and path.endswith("/bob") for path in volumes)
    assert volumes["/home/alice"]["mode"] == "rw"
    assert [v["mode"] for p, v in volumes.items() if p != "/home/alice"] == ["ro"] * (len(volumes) - 1)


def test_profiles_default_to_the_first_and_unknown_names_are_refused():
    assert af_hub.pick_profile(PROFILES, None)["name"] == "standard"
    assert af_hub.pick_profile(PROFILES, "large")["mem_limit"] == "16G"
    with pytest.raises(af_hub.SpawnRefused, match="no profile called 'huge'"):
        af_hub.pick_profile(PROFILES, "huge")


def test_the_form_offers_a_choice_only_when_there_is_one_and_escapes_names():
    assert af_hub.options_form(PROFILES[:1]) == ""
    form = af_hub.options_form(PROFILES)
    assert '<option value="large">Large &lt;16 GB&gt;</option>' in form
    assert af_hub.options_from_form({"profile": ["large"]}) == {"profile": "large"}
    assert af_hub.options_from_form({}) == {"profile": ""}


def render(template: str, **variables) -> str:
    """Render one of the role's templates with plain Jinja2 (Ansible's to_json filter added)."""
    templates = SOURCE.parents[1] / "templates"
    # Python and YAML out, not HTML: no autoescaping (as Ansible's template module).
    environment = jinja2.Environment(  # noqa: S701
        loader=jinja2.FileSystemLoader(templates), undefined=jinja2.StrictUndefined
    )
    environment.filters["to_json"] = json.dumps
    environment.filters["default"] = lambda value, fallback=None: (
        fallback if isinstance(value, jinja2.Undefined) else value
    )
    return environment.get_template(template).render(**variables)


SITE = {
    "ansible_managed": "Ansible managed",
    "jupyterhub_config_dir": "/etc/jupyterhub",
    "af_users": [{"name": "alice"}, {"name": "bob"}],
    "jupyterhub_profiles": PROFILES,
    "jupyterhub_credentials_dir": "/var/lib/af/credentials",
    "site_pki_ca_trust_path": "/usr/local/share/ca-certificates/af-site-ca.crt",
    "jupyterhub_session_env_file": "/etc/af/session.env",
    "jupyterhub_site_ca": "/usr/local/share/ca-certificates/af-site-ca.crt",
    "af_hub_port": 8443,
    "jupyterhub_api_port": 8081,
    "jupyterhub_state_dir": "/var/lib/jupyterhub",
    "af_oidc_client_id": "jupyterhub",
    "af_hub_url": "https://hub.example.org",
    "af_hub_oauth_callback_url": "https://hub.example.org/hub/oauth_callback",
    "jupyterhub_oidc": {
        "authorization_endpoint": "https://iam.example.org/authorize",
        "token_endpoint": "https://iam.example.org/token",
        "userinfo_endpoint": "https://iam.example.org/userinfo",
    },
    "af_oidc_scopes": ["openid", "profile"],
    "af_oidc_username_claim": "preferred_username",
    "af_oidc_groups_claim": "groups",
    "jupyterhub_allowed_groups": ["af-users"],
    "jupyterhub_admin_groups": ["af-admins"],
    "jupyterhub_login_service": "CMS IAM",
    "jupyterhub_start_timeout": 180,
    "jupyterhub_cull_idle_timeout": 3600,
    "jupyterhub_cull_every": 300,
    "jupyterhub_config_extra": "c.Spawner.debug = True",
}


def test_the_rendered_hub_configuration_is_valid_python_with_the_sites_knobs():
    config = render("jupyterhub_config.py.j2", **SITE)
    compile(config, "jupyterhub_config.py", "exec")  # a syntax error would stop the hub at start
    assert 'FACILITY_USERS = frozenset(["alice", "bob"])' in config
    assert 'c.GenericOAuthenticator.authorize_url = "https://iam.example.org/authorize"' in config
    assert config.rstrip().endswith("c.Spawner.debug = True")
    assert "idle-culler" in config
    assert "idle-culler" not in render("jupyterhub_config.py.j2", **{**SITE, "jupyterhub_cull_idle_timeout": 0})


def test_the_z2jh_values_carry_the_same_policy_profiles_and_culling():
    values = yaml.safe_load(
        render(
            "z2jh-values.yaml.j2",
            **SITE,
            lookup=lambda kind, path: "s3cret",
            af_oidc_client_secret_file="/x",  # noqa: S106 - a path, read through the lookup stub
            jupyterhub_discovery={"json": SITE["jupyterhub_oidc"]},
        )
    )
    oauth = values["hub"]["config"]["GenericOAuthenticator"]
    assert oauth["allowed_groups"] == ["af-users"] and oauth["allowed_users"] == ["alice", "bob"]
    assert oauth["client_secret"] == "s3cret"  # noqa: S105 - what the lookup stub returned
    profiles = values["singleuser"]["profileList"]
    assert [p["slug"] for p in profiles] == ["standard", "large"]
    assert profiles[1]["kubespawner_override"]["mem_limit"] == "16G"
    assert values["cull"] == {"enabled": True, "timeout": 3600, "every": 300}
