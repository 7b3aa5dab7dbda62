"""The Kubernetes objects the project makes hold to the official OpenAPI schema of the pinned release.

kubernetes-validate carries the JSON schemas generated from each release's OpenAPI document; strict mode
refuses any field the API does not define (a misspelt field would otherwise be dropped silently by the
API server). The release is af_defaults' af_k8s_version, so a change of the pin re-checks every object.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml
from ansible.module_utils import af_k8s_bootstrap_token as bt

REPO = Path(__file__).resolve().parents[2]
PINNED = yaml.safe_load((REPO / "roles/af_defaults/defaults/main.yml").read_text())["af_k8s_version"]
SCHEMA_VERSION = ".".join(PINNED.split(".")[:2]) + ".0"  # schemas exist per minor release


def validate(document: dict) -> None:
    kubernetes_validate.validate(document, SCHEMA_VERSION, strict=True)


def bootstrap_token_secret(**changes) -> dict:
    arguments = {
        "description": "join token for k8s-node1",
        "expires": datetime(2026, 12, 5, tzinfo=UTC) + timedelta(hours=2),
        "usages": ["authentication", "signing"],
        "groups": ["system:bootstrappers:kubeadm:default-node-token"],
    } | changes
    return bt.secret_body("abcdef", "0123456789abcdef", **arguments)


def test_the_pinned_release_has_a_schema():
    # Without one, validate() would raise VersionNotSupportedError for every object below.
    assert SCHEMA_VERSION in kubernetes_validate.utils.all_versions(), SCHEMA_VERSION


@pytest.mark.parametrize(
    "changes",
    [{}, {"expires": None}, {"groups": []}, {"usages": ["authentication"]}],
    ids=["full", "no-expiry", "no-extra-groups", "authentication-only"],
)
def test_the_bootstrap_token_secret_module_creates_is_a_valid_secret(changes):
    validate(bootstrap_token_secret(**changes))


def test_the_validator_refuses_a_field_the_api_does_not_define():
    # What strict validation is for: the API server would drop 'stringdata' and store an empty token.
    secret = bootstrap_token_secret()
    secret["stringdata"] = secret.pop("stringData")
    with pytest.raises(kubernetes_validate.ValidationError, match="'stringdata' was unexpected"):
        validate(secret)
