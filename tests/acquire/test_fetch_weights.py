"""``python -m benchmark.weights fetch --grid G``: the catalogue's files a grid names come from
the (local) mirror, verified, converted and checked; failures name the file in one line."""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torchvision

from benchmark.models.checkpoints import catalogue
from benchmark.models.checkpoints.catalogue import WeightsEntry
from benchmark.weights import main

GRID = """\
name: t
experiments:
  - family: demo
    engine: frcnn_fpn_small
    train_split: demo_train
    id_split: demo_test
    schedule: {iterations: 2, batch_size: 2, lr: 0.01}
    backbones: [{name: resnet18, weights: test_r18}]
    recipes: [{name: ft}]
"""


@pytest.fixture
def r18() -> bytes:
    buf = io.BytesIO()
    torch.save(torchvision.models.resnet18().state_dict(), buf)
    return buf.getvalue()


@pytest.fixture
def env(server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("BENCH_MIRROR", server.url)
    (tmp_path / "t.yaml").write_text(GRID)
    return tmp_path


def _entry(data: bytes, **kw) -> WeightsEntry:
    entry = WeightsEntry(name="test_r18", architecture="resnet18", file="r18-test.pth",
                         url="https://example.invalid/never/r18-test.pth", licence="test",
                         converter="torchvision", sha256=hashlib.sha256(data).hexdigest())
    return replace(entry, **kw)


def test_fetch_downloads_verifies_converts_and_checks(server, env, r18, capsys):
    server.add("r18-test.pth", r18)
    with catalogue.registered(_entry(r18)):
        assert main(["fetch", "--grid", str(env / "t.yaml"), "--quiet"]) == 0
        out = capsys.readouterr().out
        assert (env / "weights" / "r18-test.pth").read_bytes() == r18
        assert "sha256 verified" in out and "converted  test_r18" in out
        assert "torchvision: 100 keys mapped onto resnet18" in out
        assert "1 of 1 files usable" in out
        assert main(["fetch", "--grid", str(env / "t.yaml"), "--only", "test_r18"]) == 0
        assert "present    test_r18" in capsys.readouterr().out  # nothing fetched twice
    assert len(server.ranges("r18-test.pth")) == 1


def test_an_entry_without_a_published_hash_is_fetched_unverified(server, env, r18, capsys):
    server.add("r18-test.pth", r18)
    with catalogue.registered(_entry(r18, sha256=None)):
        assert main(["fetch", "--grid", str(env / "t.yaml"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "unverified: the publisher gives no hash" in out and "unverified test_r18" in out


def test_a_wrong_hash_fails_in_one_line_and_leaves_nothing(server, env, r18, capsys):
    server.add("r18-test.pth", r18)
    with catalogue.registered(_entry(r18, sha256="0123abcd")):
        assert main(["fetch", "--grid", str(env / "t.yaml"), "--quiet"]) == 1
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.startswith("failed")]
    assert "test_r18" in line and "does not match the published 0123abcd" in line
    assert not (env / "weights" / "r18-test.pth").exists()
    assert not (env / "weights" / "r18-test.pth.part").exists()
    assert "missing    test_r18" in out


def test_only_names_a_weights_of_the_grid(env, capsys):
    assert main(["fetch", "--grid", str(env / "t.yaml"), "--only", "swsl_resnet50"]) == 2
    assert "--only swsl_resnet50: not among the weights" in capsys.readouterr().err
