"""The process kubelet's pure parts: the kubelet back-off (client-go flowcontrol.Backoff as doBackOff and
EnsureImageExists use it), the AtomicWriter layout of configMap volumes, and which images it can run."""

from __future__ import annotations

import base64

import pytest

from devstack.fleet.backoff import BackOff, go_duration
from devstack.fleet.images import MODELOPS, RUNTIME, image_for
from devstack.fleet.volumes import DATA_LINK, MountError, volume_files, write_atomically


def test_restarts_back_off_10s_doubling_to_300s():
    """doBackOff: the first exit restarts at once (Next), each later exit within the back-off waits, and
    the back-off doubles up to the maximum."""
    backoff, key, now = BackOff(), "pod/c", 1000.0
    assert not backoff.in_backoff_since(key, now, now)  # first crash: no entry, restart now
    waits = []
    for _ in range(7):
        backoff.next(key, now, now)
        waits.append(backoff.get(key))
        assert backoff.in_backoff_since(key, now, now + backoff.get(key) - 1)
        assert not backoff.in_backoff_since(key, now, now + backoff.get(key))
        now += backoff.get(key) + 1  # it restarted, ran a second and crashed again
    assert waits == [10, 20, 40, 80, 160, 300, 300]


def test_a_container_that_ran_ten_minutes_starts_over():
    """hasExpired: an entry untouched for twice the maximum (600 s) is forgotten."""
    backoff, key = BackOff(), "pod/c"
    backoff.next(key, 0.0, 0.0)
    backoff.next(key, 5.0, 5.0)
    assert backoff.get(key) == 20
    assert not backoff.in_backoff_since(key, 606.0, 606.5)
    backoff.next(key, 606.0, 606.0)
    assert backoff.get(key) == 10


def test_image_pull_back_off_counts_from_the_last_failure():
    """IsInBackOffSinceUpdate."""
    backoff, key = BackOff(initial=1.0, maximum=4.0), "pod/image"
    backoff.next(key, 0.0, 0.0)
    assert backoff.in_backoff_since_update(key, 0.5)
    assert not backoff.in_backoff_since_update(key, 1.0)


@pytest.mark.parametrize(("seconds", "text"), [(10, "10s"), (0.5, "500ms"), (1.5, "1.5s"), (80, "1m20s"),
                                               (300, "5m0s")])
def test_durations_read_like_go(seconds, text):
    assert go_duration(seconds) == text


@pytest.mark.parametrize(("image", "runs"), [
    ("ghcr.io/tradeops/trading-runtime:0.1.0", RUNTIME),
    ("ghcr.io/acme/trading-runtime@sha256:" + "a" * 64, RUNTIME),
    ("trading-runtime:dev", RUNTIME),
    ("registry.local:5000/team/trading-runtime:2", RUNTIME),
    ("ghcr.io/tradeops/tradeops-modelops:0.1.0", MODELOPS),
    ("ghcr.io/acme/tradeops-modelops@sha256:" + "b" * 64, MODELOPS),
    ("ghcr.io/tradeops/trading-runtme:0.1.0", None),
    ("ghcr.io/tradeops/trading-runtime-debug:0.1.0", None),
    ("ghcr.io/tradeops/modelops:0.1.0", None),
    ("nginx:1.25", None),
], ids=["release", "digest", "local-build", "private-registry", "training", "training-digest", "typo",
        "another-image", "not-the-training-image", "nginx"])
def test_only_the_runtime_and_training_images_run(image, runs):
    assert image_for(image) is runs


def test_the_training_image_runs_modelops_without_the_runtimes_flags():
    assert MODELOPS.entrypoint[1:] == ("-m", "modelops")
    assert MODELOPS.cmd == ("train", "--help")
    assert MODELOPS.runtime is False
    assert RUNTIME.runtime is True


def lookup(objects: dict[tuple[str, str], dict]):
    return lambda plural, name: objects.get((plural, name))


def test_volumes_take_every_key_items_projections_and_optional_sources():
    objects = {("configmaps", "cfg"): {"data": {"runtime.yaml": "a", "switches.yaml": "b"}},
               ("secrets", "creds"): {"data": {"token": base64.b64encode(b"s3cret").decode()}}}
    assert volume_files({"configMap": {"name": "cfg"}}, lookup(objects)) == {"runtime.yaml": b"a",
                                                                              "switches.yaml": b"b"}
    picked = volume_files({"configMap": {"name": "cfg", "items": [{"key": "runtime.yaml", "path": "r/x.yaml"}]}},
                          lookup(objects))
    assert picked == {"r/x.yaml": b"a"}
    projected = {"projected": {"sources": [{"configMap": {"name": "cfg", "items": [{"key": "switches.yaml"}]}},
                                           {"secret": {"name": "creds"}},
                                           {"configMap": {"name": "absent", "optional": True}}]}}
    assert volume_files(projected, lookup(objects)) == {"switches.yaml": b"b", "token": b"s3cret"}
    assert volume_files({"emptyDir": {}}, lookup(objects)) is None
    with pytest.raises(MountError, match='configmap "absent" not found'):
        volume_files({"configMap": {"name": "absent"}}, lookup(objects))
    with pytest.raises(MountError, match="non-existent config key: nope"):
        volume_files({"configMap": {"name": "cfg", "items": [{"key": "nope"}]}}, lookup(objects))


def test_the_atomic_writer_swaps_a_symlink(tmp_path):
    """AtomicWriter: files are links through ..data; an update replaces ..data in one rename, drops the
    old directory and the files that went."""
    assert write_atomically(tmp_path, {"runtime.yaml": b"v1", "old.yaml": b"x"})
    first = (tmp_path / DATA_LINK).resolve()
    assert (tmp_path / "runtime.yaml").read_bytes() == b"v1"
    assert not write_atomically(tmp_path, {"runtime.yaml": b"v1", "old.yaml": b"x"})  # unchanged: no swap
    assert write_atomically(tmp_path, {"runtime.yaml": b"v2"})
    assert (tmp_path / "runtime.yaml").read_bytes() == b"v2"
    assert (tmp_path / "runtime.yaml").is_symlink()
    assert not (tmp_path / "old.yaml").exists()
    assert (tmp_path / DATA_LINK).resolve() != first
    assert not first.exists()
