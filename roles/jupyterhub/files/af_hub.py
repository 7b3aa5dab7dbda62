"""The facility's policy for JupyterHub, imported by jupyterhub_config.py (role jupyterhub).

Plain functions without JupyterHub imports, so that the unit tests exercise them directly:

- who may have a server (a facility account, af_users) and where their things are on the node;
- whether a user's credential directory is fit to mount (exists, theirs, private) before a spawn;
- the site settings every session gets (/etc/af/session.env);
- profiles (image, memory, CPUs) and the form to choose one.
"""

from __future__ import annotations

import html
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path


class SpawnRefused(Exception):
    """A server must not start; the message is shown to the user."""


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    home: str


def facility_account(name: str, facility_users: set[str] | frozenset[str]) -> Account:
    """The node account of a facility user; refuses names that are not facility users (root, daemons)."""
    if name not in facility_users:
        raise SpawnRefused(f"{name} has no facility account")
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise SpawnRefused(f"{name} is a facility user but has no account on this node yet") from None
    return Account(name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def check_credentials(directory: str | os.PathLike, uid: int) -> None:
    """Refuse a spawn unless directory exists, is a directory owned by uid and is private (no group/other
    access). Docker would otherwise create a missing bind-mount source as an empty root-owned directory,
    and the user would start without tokens, or with someone else's if the path were wrong."""
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        raise SpawnRefused(f"no credentials at {directory}: ask the facility to provision your account") from None
    if not stat.S_ISDIR(info.st_mode):
        raise SpawnRefused(f"{directory} is not a directory")
    if info.st_uid != uid:
        raise SpawnRefused(f"{directory} belongs to UID {info.st_uid}, not to the user (UID {uid})")
    if info.st_mode & 0o077:
        raise SpawnRefused(f"{directory} is readable by others (mode {stat.S_IMODE(info.st_mode):04o})")


def read_env_file(path: str | os.PathLike) -> dict[str, str]:
    """KEY=VALUE lines of an env file (docker --env-file syntax: no quoting, # comments)."""
    settings = {}
    for raw in Path(path).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, separator, value = line.partition("=")
        if not separator or not name.strip():
            raise ValueError(f"{path}: not KEY=VALUE: {line!r}")
        settings[name.strip()] = value
    return settings


def container_volumes(account: Account, credentials_dir: str, site_ca: str) -> dict[str, dict[str, str]]:
    """Bind mounts of a user's server, as af-notebook mounts them: home read-write, the user's own
    credentials read-only, the node's account database and trust store read-only."""
    volumes = {
        account.home: {"bind": account.home, "mode": "rw"},
        str(Path(credentials_dir) / account.name): {"bind": "/etc/af/credentials", "mode": "ro"},
        "/etc/passwd": {"bind": "/etc/passwd", "mode": "ro"},
        "/etc/group": {"bind": "/etc/group", "mode": "ro"},
        "/etc/ssl/certs": {"bind": "/etc/ssl/certs", "mode": "ro"},
        "/usr/share/ca-certificates": {"bind": "/usr/share/ca-certificates", "mode": "ro"},
        "/usr/local/share/ca-certificates": {"bind": "/usr/local/share/ca-certificates", "mode": "ro"},
        site_ca: {"bind": "/etc/af/site-ca.pem", "mode": "ro"},
    }
    return volumes


def pick_profile(profiles: list[dict], name: str | None) -> dict:
    """The profile called name, or the first one when no name was chosen."""
    if not profiles:
        raise SpawnRefused("the hub offers no profiles")
    if not name:
        return profiles[0]
    for profile in profiles:
        if profile["name"] == name:
            return profile
    raise SpawnRefused(f"no profile called {name!r}")


def options_form(profiles: list[dict]) -> str:
    """The spawn page's choice of profiles (nothing to choose with one profile)."""
    if len(profiles) <= 1:
        return ""
    options = "\n".join(
        f'<option value="{html.escape(p["name"])}"{" selected" if i == 0 else ""}>'
        f"{html.escape(p.get('display_name') or p['name'])}</option>"
        for i, p in enumerate(profiles)
    )
    return f'<label for="profile">Profile</label>\n<select class="form-control" name="profile">\n{options}\n</select>'


def options_from_form(formdata: dict[str, list[str]]) -> dict[str, str]:
    return {"profile": (formdata.get("profile") or [""])[0]}
