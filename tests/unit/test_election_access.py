"""Where the runtime finds the API server for its Lease (trading_runtime/election.py): the pod's ServiceAccount
in a cluster, the devstack's URL, or nowhere (it then trades alone and says so)."""

from __future__ import annotations

from trading_runtime.election import ApiAccess


def service_account(tmp_path, namespace: str | None = "trading"):
    (tmp_path / "token").write_text("tok\n")
    (tmp_path / "ca.crt").write_text("---")
    if namespace:
        (tmp_path / "namespace").write_text(namespace)
    return tmp_path


def test_in_cluster_uses_the_mounted_token_ca_and_namespace(tmp_path):
    mounted = service_account(tmp_path)
    access = ApiAccess.from_environment({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"},
                                        mounted)
    assert access == ApiAccess("https://10.0.0.1:443", "trading", mounted / "token", mounted / "ca.crt")


def test_the_pods_namespace_from_the_downward_api_wins_and_ipv6_hosts_are_bracketed(tmp_path):
    mounted = service_account(tmp_path, namespace="other")
    access = ApiAccess.from_environment({"KUBERNETES_SERVICE_HOST": "fd00::1", "POD_NAMESPACE": "trading"}, mounted)
    assert access is not None
    assert access.url == "https://[fd00::1]:443"
    assert access.namespace == "trading"


def test_the_devstack_url_needs_no_token(tmp_path):
    access = ApiAccess.from_environment({"TRADEOPS_KUBE_API_URL": "http://127.0.0.1:5000/", "POD_NAMESPACE": "ns"},
                                        tmp_path / "absent")
    assert access == ApiAccess("http://127.0.0.1:5000", "ns")


def test_without_a_service_account_or_url_there_is_no_api(tmp_path):
    assert ApiAccess.from_environment({}, tmp_path / "absent") is None
    # A host without a mounted token (automountServiceAccountToken: false) is no access either.
    assert ApiAccess.from_environment({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, tmp_path / "absent") is None
