"""The weights catalogue, its converters (each on a synthetic checkpoint written in its
source's format and key layout), strict matching, grid validation, ``benchmark.weights``
and published rows matched by catalogue identity."""

from __future__ import annotations

import hashlib
import pickle
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torchvision

from benchmark.errors import ConfigError, MissingFileError
from benchmark.models.backbones import BACKBONES, build_body
from benchmark.models.checkpoints import catalogue
from benchmark.models.checkpoints.catalogue import WeightsEntry
from benchmark.models.checkpoints.convert import CONVERTERS


@pytest.fixture
def wdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "weights"
    d.mkdir()
    monkeypatch.setenv("BENCH_WEIGHTS", str(d))
    return d


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _entry(name: str, arch: str, file: str, converter: str, path: Path, **kw) -> WeightsEntry:
    """A test catalogue entry whose hash is its synthetic file's."""
    return WeightsEntry(name=name, architecture=arch, file=file,
                        url=f"https://example.org/{file}", licence="test", converter=converter,
                        sha256=_sha(path), **kw)


def _r50(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    net = torchvision.models.resnet50()
    for m in net.modules():  # non-trivial statistics, so a wrong mapping shows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    return net.state_dict()


def _load_entry(entry: WeightsEntry, freeze_at: int | None = 0):
    with catalogue.registered(entry):
        return build_body(entry.architecture, entry.name, freeze_at)


def _same_r50(body, ref: dict[str, torch.Tensor]) -> None:
    assert torch.equal(body.stages[0][0].weight, ref["conv1.weight"])
    assert torch.equal(body.stages[3][2].conv2.weight, ref["layer3.2.conv2.weight"])
    bn = body.stages[4][0].downsample[1]
    assert torch.equal(bn.running_var, ref["layer4.0.downsample.1.running_var"])


# ---- the table -----------------------------------------------------------------------------------
def test_catalogue_entries_are_consistent():
    for e in catalogue.entries():
        assert e.architecture in BACKBONES, e.name
        assert e.converter in CONVERTERS, e.name
        assert e.pixels in catalogue.PIXELS and e.url.startswith("https://"), e.name
        assert catalogue.looks_like_name(e.name), e.name
        assert e.sha256 is None or re.fullmatch(r"[0-9a-f]{8,64}", e.sha256), e.name
    for required in ("torchvision_resnet50", "torchvision_resnet101", "msra_resnet50",
                     "msra_resnet101", "swsl_resnet18", "swsl_resnet50", "ssl_resnet50",
                     "swsl_resnext50_32x4d", "seresnet50_ra_224", "convnext_base_1k",
                     "convnext_base_22k", "tf_efficientnet_b0_ns", "tf_efficientnet_b2_ns",
                     "efficientnet_b2_ra", "swin_tiny", "swin_small", "swin_base",
                     "augmix_resnet50", "deepaugment_resnet50", "deepaugment_augmix_resnet50",
                     "ant_resnet50", "sin_resnet50", "prime_resnet50", "adv_l2_eps0_1_resnet50",
                     "adv_l2_eps1_resnet50", "adv_l2_eps3_resnet50", "adv_l2_eps5_resnet50"):
        assert catalogue.lookup(required) is not None, required
    # the study's file names (mind_back@5e6694f src/modeling/backbone/fpn.py, model_list.txt)
    files = {e.file for e in catalogue.entries()}
    assert {"semi_weakly_supervised_resnet50-16a12f1b.pth", "convnext_base_22k_224.pth",
            "convnext_base_1k_224_ema.pth", "tf_efficientnet_b2_ns-00306e48.pth",
            "R-50.pkl", "R-101.pkl"} <= files
    msra = catalogue.get("msra_resnet50").pixel_stats
    assert (msra.mean, msra.std, msra.channel_order) == ((103.53, 116.28, 123.675),
                                                         (1.0, 1.0, 1.0), "BGR")


def test_every_published_row_is_a_catalogue_entry():
    from benchmark.families import FAMILIES
    from benchmark.report.published import PUBLISHED_RGN

    keys = {k for e in catalogue.entries() for k in e.publication}
    for fam in FAMILIES.in_order():
        for row in fam.published:
            assert row.weights_key in keys, row.backbone
    for ref in PUBLISHED_RGN:
        assert ref.weights_key in keys, ref.backbone


# ---- converters, each on its source's layout -----------------------------------------------------
def test_torchvision_layout_swsl(wdir):
    """FB semi-weakly supervised release (torch.hub facebookresearch/semi-supervised-
    ImageNet1K-models ``hubconf.py``): a bare torchvision ResNet state dict."""
    ref = _r50()
    path = wdir / "semi_weakly_supervised_resnet50-16a12f1b.pth"
    torch.save(ref, path)
    body = _load_entry(_entry("test_swsl", "resnet50", path.name, "torchvision", path))
    _same_r50(body, ref)
    assert body.channel_order == "RGB" and body.weights_report.ignored == ("fc.weight", "fc.bias")


def test_msra_pkl_maps_caffe2_names_bgr_and_stride_in_1x1(wdir):
    """detectron2 ``ImageNetPretrained/MSRA/R-50.pkl`` names (detectron2
    ``checkpoint/c2_model_loading.py``): ``conv1_w``, ``res_conv1_bn_s/_b``,
    ``res<2-5>_<i>_branch2{a,b,c}_w`` / ``_bn_s`` / ``_bn_b``, ``res<s>_0_branch1_*``,
    ``fc1000_w/_b``, plus ``*_momentum`` solver blobs, under ``"blobs"``; affine-only BN."""
    ref = _r50()
    blobs = {"conv1_w": ref["conv1.weight"].numpy(), "res_conv1_bn_s": ref["bn1.weight"].numpy(),
             "res_conv1_bn_b": ref["bn1.bias"].numpy(), "fc1000_w": ref["fc.weight"].numpy(),
             "fc1000_b": ref["fc.bias"].numpy(), "conv1_w_momentum": ref["conv1.weight"].numpy()}
    for stage, n in ((2, 3), (3, 4), (4, 6), (5, 3)):
        for b in range(n):
            base = f"layer{stage - 1}.{b}"
            for i, br in ((1, "2a"), (2, "2b"), (3, "2c")):
                blobs[f"res{stage}_{b}_branch{br}_w"] = ref[f"{base}.conv{i}.weight"].numpy()
                blobs[f"res{stage}_{b}_branch{br}_bn_s"] = ref[f"{base}.bn{i}.weight"].numpy()
                blobs[f"res{stage}_{b}_branch{br}_bn_b"] = ref[f"{base}.bn{i}.bias"].numpy()
            if b == 0:
                blobs[f"res{stage}_0_branch1_w"] = ref[f"{base}.downsample.0.weight"].numpy()
                blobs[f"res{stage}_0_branch1_bn_s"] = ref[f"{base}.downsample.1.weight"].numpy()
                blobs[f"res{stage}_0_branch1_bn_b"] = ref[f"{base}.downsample.1.bias"].numpy()
    path = wdir / "R-50.pkl"
    path.write_bytes(pickle.dumps({"blobs": blobs}, protocol=2))
    body = _load_entry(_entry("test_msra", "resnet50", "R-50.pkl", "msra_pkl", path,
                              pixels="msra_bgr", options=(("stride_in_1x1", True),)))
    assert torch.equal(body.stages[3][2].conv2.weight, ref["layer3.2.conv2.weight"])
    bn = body.stages[4][0].downsample[1]
    assert torch.equal(bn.weight, ref["layer4.0.downsample.1.weight"])
    assert torch.equal(bn.running_var, torch.ones(2048))  # statistics folded into s and b
    assert body.stages[2][0].conv1.stride == (2, 2) and body.stages[2][0].conv2.stride == (1, 1)
    assert (body.channel_order, body.pixel_std, body.rgb_pixel_mean) == (
        "BGR", (1.0, 1.0, 1.0), (123.675, 116.28, 103.53))
    # the body reads the RGB image in BGR
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(body(x)["2"], body._levels(x.flip(1))[-1])


def test_msra_pkl_refuses_anything_but_arrays(wdir):
    path = wdir / "R-50.pkl"
    path.write_bytes(pickle.dumps({"blobs": {"conv1_w": Path("x")}}))
    with pytest.raises(ConfigError, match="not a readable checkpoint.*not allowed"):
        _load_entry(_entry("test_msra", "resnet50", "R-50.pkl", "msra_pkl", path))


def test_module_prefix_augmix(wdir):
    """hendrycks/augmix ``imagenet.py`` saves ``{"epoch", "arch", "state_dict" (of a
    DataParallel model: ``module.conv1.weight`` …), "best_acc1", "optimizer"}``."""
    ref = _r50(1)
    path = wdir / "augmix_checkpoint.pth.tar"
    torch.save({"epoch": 180, "arch": "resnet50", "best_acc1": 77.5,
                "state_dict": {f"module.{k}": v for k, v in ref.items()}}, path)
    _same_r50(_load_entry(_entry("test_augmix", "resnet50", path.name, "module_prefix", path)),
              ref)


def test_robustness_library_drops_attacker_and_normaliser(wdir):
    """MadryLab robustness ``AttackerModel`` checkpoints: ``{"model": {"module.normalizer.
    new_mean", "module.normalizer.new_std", "module.model.*", "module.attacker.normalize.*",
    "module.attacker.model.*"}, "epoch"}``."""
    ref = _r50(2)
    state = {"module.normalizer.new_mean": torch.zeros(3, 1, 1),
             "module.normalizer.new_std": torch.ones(3, 1, 1),
             "module.attacker.normalize.new_mean": torch.zeros(3, 1, 1),
             "module.attacker.normalize.new_std": torch.ones(3, 1, 1)}
    for k, v in ref.items():
        state[f"module.model.{k}"] = v
        state[f"module.attacker.model.{k}"] = v.clone()
    path = wdir / "resnet50_l2_eps3.ckpt"
    torch.save({"model": state, "epoch": 90}, path)
    _same_r50(_load_entry(_entry("test_adv", "resnet50", path.name, "robustness", path)), ref)


def test_fb_convnext_release(wdir):
    """facebookresearch/ConvNeXt ``models/convnext.py`` keys, saved as ``{"model": sd}``:
    ``downsample_layers.0.{0,1}`` (stem conv + LN), ``downsample_layers.{1-3}.{0,1}``
    (LN + conv), ``stages.i.j.{dwconv,norm,pwconv1,pwconv2}.*``, ``stages.i.j.gamma``,
    final ``norm.*`` and ``head.*``."""
    import timm

    torch.manual_seed(0)
    src = timm.create_model("convnext_tiny").state_dict()
    fb = {}
    for k, v in src.items():
        k = re.sub(r"^stem\.", "downsample_layers.0.", k)
        k = re.sub(r"^stages\.(\d)\.downsample\.", r"downsample_layers.\1.", k)
        k = re.sub(r"^stages\.(\d)\.blocks\.(\d+)\.", r"stages.\1.\2.", k)
        k = k.replace(".conv_dw.", ".dwconv.").replace(".mlp.fc", ".pwconv")
        k = k.replace("head.norm.", "norm.").replace("head.fc.", "head.")
        fb[k] = v
    assert {"downsample_layers.0.1.weight", "downsample_layers.3.0.bias", "stages.2.8.gamma",
            "stages.3.2.pwconv2.weight", "norm.weight", "head.bias"} <= set(fb)
    path = wdir / "convnext_tiny_22k_224.pth"
    torch.save({"model": fb}, path)
    body = _load_entry(_entry("test_convnext", "convnext_tiny", path.name, "fb_convnext", path),
                       None)
    assert torch.equal(body.stages[3].blocks[4].mlp.fc1.weight, fb["stages.2.4.pwconv1.weight"])
    assert torch.equal(body.stages[2].downsample[0].weight, fb["downsample_layers.1.0.weight"])
    assert body.stages[2].downsample[0].weight.requires_grad  # mind_back keeps it trainable


def test_msft_swin_release(wdir):
    """microsoft/Swin-Transformer ``models/swin_transformer.py`` keys, ``{"model": sd}``:
    ``layers.i.downsample`` at the end of stage i (0–2), ``attn_mask`` buffers in shifted
    blocks, ``relative_position_index`` buffers, ``norm.*`` and ``head.*``."""
    import timm

    torch.manual_seed(0)
    src = timm.create_model("swin_tiny_patch4_window7_224").state_dict()
    ms = {}
    for k, v in src.items():
        m = re.match(r"^layers\.(\d)\.downsample\.(.*)$", k)
        if m:
            k = f"layers.{int(m.group(1)) - 1}.downsample.{m.group(2)}"
        ms[k.replace("head.fc.", "head.")] = v
        if k.endswith("attn.relative_position_bias_table"):
            ms[k.replace("bias_table", "index")] = torch.zeros(49, 49, dtype=torch.long)
    ms["layers.0.blocks.1.attn_mask"] = torch.zeros(64, 49, 49)
    assert "layers.0.downsample.reduction.weight" in ms and "head.weight" in ms
    path = wdir / "swin_tiny_patch4_window7_224.pth"
    torch.save({"model": ms}, path)
    body = _load_entry(_entry("test_swin", "swin_tiny", path.name, "msft_swin", path), None)
    assert torch.equal(body.stages[2].downsample.reduction.weight,
                       ms["layers.0.downsample.reduction.weight"])


def test_timm_release_tf_efficientnet(wdir):
    """timm ``tf_efficientnet_b0_ns`` files: the timm model's own keys, classifier included."""
    import timm

    torch.manual_seed(0)
    src = timm.create_model("tf_efficientnet_b0").state_dict()
    path = wdir / "tf_efficientnet_b0_ns-c0e6a31c.pth"
    torch.save(src, path)
    body = _load_entry(_entry("test_ns", "tf_efficientnet_b0", path.name, "timm", path), None)
    assert torch.equal(body.stages[0][0].weight, src["conv_stem.weight"])
    assert torch.equal(body.stages[5][1][0].conv_pwl.weight, src["blocks.6.0.conv_pwl.weight"])
    assert set(body.weights_report.ignored) >= {"classifier.weight", "conv_head.weight"}


@pytest.mark.parametrize("layout", ["deit", "jx_linear_patch"])
def test_timm_vit_releases_map_every_key(layout, wdir):
    """RobustViT's two ViT-B/16 checkpoints (hila-chefer/RobustViT@df06c98 ViT/ViT.py:29-32,
    42-43) in their publishers' layouts, written from a random timm ViT-B/16 (the keys
    RobustViT's own VisionTransformer has, ViT.py:168-205): DeiT's ``{"model": sd}``
    (ViT.py:307) and a bare dict whose patch embedding is the old linear (768, 768) form
    RobustViT's ``_conv_filter`` reshapes (ViT.py:240-247). Every key of the network but the
    classifier maps; nothing is missing, left over or mis-shaped."""
    import timm

    torch.manual_seed(0)
    src = timm.create_model("vit_base_patch16_224").state_dict()
    assert len(src) == 152 and {"cls_token", "pos_embed", "blocks.11.attn.qkv.weight",
                                "norm.bias", "head.weight"} <= set(src)
    if layout == "deit":
        raw = {"model": src}
    else:
        raw = {**src, "patch_embed.proj.weight": src["patch_embed.proj.weight"].reshape(768, -1)}
    path = wdir / f"vit_{layout}.pth"
    torch.save(raw, path)
    body = _load_entry(_entry(f"test_vit_{layout}", "vit_base_patch16", path.name, "timm_vit",
                              path), None)
    report = body.weights_report
    assert (report.missing, report.unexpected, report.mismatched) == ((), (), ())
    assert len(report.mapped) == 150 and set(report.ignored) == {"head.weight", "head.bias"}
    net = body.stages[0].net
    for key, value in net.state_dict().items():
        assert torch.equal(value, src[key]), key


def test_timm_vit_refuses_a_position_embedding_of_another_grid(wdir):
    import timm

    src = timm.create_model("vit_base_patch16_384").state_dict()
    path = wdir / "vit384.pth"
    torch.save(src, path)
    with pytest.raises(ConfigError, match=r"pos_embed \(1, 577, 768\) does not fit.*197"):
        _load_entry(_entry("test_vit384", "vit_base_patch16", path.name, "timm_vit", path))


def test_robustvit_entries_name_their_statistics():
    """Google's ViT expects mean = std = 0.5 (ViT.py:31); DeiT the ImageNet statistics
    (timm/models/deit.py:146), not the 0.5 RobustViT feeds every model."""
    vit, deit = catalogue.get("vit_base_patch16_224_in21k_ft_in1k"), catalogue.get(
        "deit_base_patch16_224")
    assert vit.pixel_stats.mean == vit.pixel_stats.std == (127.5, 127.5, 127.5)
    assert deit.pixel_stats == catalogue.IMAGENET_RGB
    assert (vit.file, deit.file) == ("jx_vit_base_p16_224-80ecf9dd.pth",
                                     "deit_base_patch16_224-b5f2ef4d.pth")
    assert vit.architecture == deit.architecture == "vit_base_patch16"


# ---- strictness ----------------------------------------------------------------------------------
def test_partial_checkpoint_is_refused_unless_not_strict(wdir):
    ref = {k: v for k, v in _r50().items() if not k.startswith("layer4.")}
    path = wdir / "partial.pth"
    torch.save(ref, path)
    with pytest.raises(ConfigError, match=r"missing \d+ keys: layer4\.0\.conv1\.weight.*"
                                          "strict: false"):
        build_body("resnet50", str(path), None)
    body = build_body("resnet50", str(path), None, strict=False)
    assert torch.equal(body.stages[1][0].conv1.weight, ref["layer1.0.conv1.weight"])
    assert body.weights_report.missing[0] == "layer4.0.conv1.weight"


def test_unexpected_keys_are_named(wdir):
    state = {**_r50(), "extra.weight": torch.zeros(1)}
    path = wdir / "extra.pth"
    torch.save(state, path)
    with pytest.raises(ConfigError, match=r"unexpected 1 keys: extra\.weight"):
        build_body("resnet50", str(path), None, strict=False)


# ---- identity: names, hashes, architectures ------------------------------------------------------
def test_hash_mismatch_and_wrong_architecture_are_refused(wdir):
    path = wdir / catalogue.get("swsl_resnet50").file
    torch.save(_r50(), path)
    with pytest.raises(ConfigError, match=f"sha256 {_sha(path)}, the catalogue expects 16a12f1b"):
        build_body("resnet50", "swsl_resnet50", None)
    with pytest.raises(ConfigError, match="a resnet50 checkpoint, not convnext_base"):
        build_body("convnext_base", "swsl_resnet50", None)
    with pytest.raises(ConfigError, match="unknown weights 'swsl_r50'.*swsl_resnet50"):
        build_body("resnet50", "swsl_r50", None)


def test_a_path_is_identified_by_its_hash(wdir):
    """A file under any name whose sha256 is a catalogue entry's gets that entry's converter
    and statistics."""
    ref = _r50()
    path = wdir / "whatever.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in ref.items()}}, path)
    with catalogue.registered(_entry("test_prefixed", "resnet50", "x.pth", "module_prefix", path,
                                     pixels="msra_bgr")):
        body = build_body("resnet50", str(path), None)
    _same_r50(body, ref)
    assert body.channel_order == "BGR"


def test_published_rows_match_by_catalogue_identity(wdir):
    from benchmark.report.published import publication_keys

    publication_keys.cache_clear()
    assert publication_keys("resnet50", "swsl_resnet50") == {"swsl_r50"}
    assert publication_keys("convnext_base", "swsl_resnet50") == frozenset()
    assert publication_keys("tf_efficientnet_b2", "tf_efficientnet_b2_ns") == {"effb2_ns"}
    # never by the look of a file name
    fake = wdir / "semi_weakly_supervised_resnet50-16a12f1b.pth"
    torch.save(_r50(), fake)
    assert publication_keys("resnet50", str(fake)) == frozenset()
    assert publication_keys("resnet50", "swsl_ig1b_instagram") == frozenset()
    # a file whose content is a catalogue entry's matches that entry's rows
    with catalogue.registered(replace(_entry("test_ig", "resnet50", "y.pth", "torchvision",
                                             fake), publication=("swsl_r50",))):
        publication_keys.cache_clear()
        assert publication_keys("resnet50", str(fake)) == {"swsl_r50"}
        assert publication_keys("resnet50", _sha(fake)) == {"swsl_r50"}
    publication_keys.cache_clear()


# ---- grid validation and the command line --------------------------------------------------------
GRID = """\
name: t
experiments:
  - family: demo
    engine: frcnn_fpn_small
    train_split: demo_train
    id_split: demo_test
    schedule: {{iterations: 2, batch_size: 2, lr: 0.01}}
    backbones: [{backbone}]
    recipes: [{{name: ft}}]
"""


@pytest.mark.parametrize("backbone,error,pattern", [
    ("{name: resnet50, weights: swsl_r50}", ConfigError, "unknown weights.*swsl_resnet50"),
    ("{name: convnext_base, weights: swsl_resnet50}", ConfigError,
     "backbone 'convnext_base' with weights 'swsl_resnet50', a checkpoint of 'resnet50'"),
    ("{name: resnet50, weights: swsl_resnet50}", MissingFileError,
     "semi_weakly_supervised_resnet50-16a12f1b.pth: not found.*https://dl.fbaipublicfiles"),
])
def test_grid_validation_of_weights(backbone, error, pattern, wdir, tmp_path):
    from benchmark.grid import load_grid

    grid = tmp_path / "t.yaml"
    grid.write_text(GRID.format(backbone=backbone))
    with pytest.raises(error, match=pattern):
        load_grid(str(grid), resolve_data=False)


def test_dry_run_reports_a_wrong_hash_and_a_wrong_architecture(wdir, tmp_path, capsys):
    from benchmark.run import main as run_main

    torch.save(_r50(), wdir / catalogue.get("swsl_resnet50").file)
    grid = tmp_path / "t.yaml"
    grid.write_text(GRID.format(backbone="{name: resnet50, weights: swsl_resnet50}"))
    assert run_main(["--grid", str(grid), "--dry-run"]) == 1  # listed with the rest
    out = capsys.readouterr().out
    line = re.search(r"wrong hash +weights +swsl_resnet50 .*\n(.*)\n(.*)", out)
    assert line and "16a12f1b" in line[1] and _sha(wdir / catalogue.get("swsl_resnet50").file) \
        in line[1]
    assert f"weights fetch --grid {grid} --only swsl_resnet50" in line[2]
    torch.save(torchvision.models.resnet18().state_dict(), wdir / "r18.pth")
    grid.write_text(GRID.format(backbone="{name: resnet50, weights: r18.pth}"))
    assert run_main(["--grid", str(grid), "--dry-run"]) == 2
    assert re.search(r"missing \d+ keys: layer1\.0\.conv3\.weight", capsys.readouterr().err)


def test_check_lists_missing_files_then_hash_mismatches(wdir, capsys):
    from benchmark.acquire.inputs import check_rows
    from benchmark.weights import _grid_weights, main

    assert main(["check", "--grid", "mind_back_pascal"]) == 1
    out = capsys.readouterr().out
    pairs = _grid_weights("mind_back_pascal")
    assert len(pairs) == 8
    for _, name in pairs:
        e = catalogue.get(name)
        assert re.search(rf"missing +{name} .*fetch {re.escape(e.url)} and put it at "
                         rf"{re.escape(str(wdir / e.file))}", out), name
    for _, name in pairs:  # synthetic files under the real names
        (wdir / catalogue.get(name).file).write_bytes(b"synthetic " + name.encode())
    rows = {r["weights"]: r for r in check_rows(pairs)}
    for name, r in rows.items():
        e = catalogue.get(name)
        if e.sha256:
            assert r["status"] == "wrong hash" and e.sha256 in r["detail"], name
            assert _sha(wdir / e.file) in r["detail"]
        else:  # the publisher gives no hash: found, reported unverified with its digest
            assert r["status"] == "unverified" and _sha(wdir / e.file) in r["detail"], name
    assert {n for n, r in rows.items() if r["status"] == "wrong hash"} == {
        "swsl_resnet50", "tf_efficientnet_b2_ns", "tf_efficientnet_b0_ns"}


def test_check_and_convert_a_test_entry(wdir, tmp_path, capsys):
    from benchmark.weights import main

    path = wdir / "augmix.pth.tar"
    torch.save({"state_dict": {f"module.{k}": v for k, v in _r50().items()}}, path)
    entry = _entry("test_augmix_ok", "resnet50", path.name, "module_prefix", path)
    with catalogue.registered(entry):
        assert main(["check"]) == 1  # the shipped entries are missing here
        assert re.search(r"ok +test_augmix_ok", capsys.readouterr().out)
        out = tmp_path / "converted.pth"
        assert main(["convert", "test_augmix_ok", "--backbone", "resnet50", "--out",
                     str(out)]) == 0
        report = capsys.readouterr().out
    assert "mapped: 265" in report and "missing: 0" in report and "unexpected: 0" in report
    assert "stages.0.0.weight" in torch.load(out, weights_only=True)
    assert main(["list"]) == 0 and "adv_l2_eps3_resnet50" in capsys.readouterr().out


@pytest.mark.parametrize("arch,converter,probe", [
    ("convnext_tiny", "torchvision_convnext", "features.5.3.block.3.weight"),
    ("efficientnet_b0", "torchvision_efficientnet", "features.6.2.block.3.0.weight")])
def test_torchvision_files_of_timm_architectures(arch, converter, probe, wdir):
    """torchvision's own ConvNeXt / EfficientNet files (``torchvision/models/convnext.py``,
    ``efficientnet.py`` layouts) load into the timm bodies and compute the same network:
    the body's P5 equals torchvision's last stage (``features[:8]``: before the head conv)."""
    torch.manual_seed(0)
    tv = getattr(torchvision.models, arch)().eval()
    for m in tv.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2)
    assert probe in tv.state_dict()
    path = wdir / f"{arch}-tv.pth"
    torch.save(tv.state_dict(), path)
    body = _load_entry(_entry(f"test_{arch}", arch, path.name, converter, path), None).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(body.levels(x)["p5"], tv.features[:8](x))


def test_the_engine_normalises_with_the_bodys_statistics(wdir):
    """A BGR / std-1 checkpoint changes the detector's normalisation (RGB order, [0, 1])."""
    from benchmark.models import build_detector
    from tests.test_registries import CELL

    path = wdir / "r18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    entry = _entry("test_bgr_r18", "resnet18", "r18.pth", "torchvision", path, pixels="msra_bgr")
    with catalogue.registered(entry):
        spec = replace(CELL, backbone=replace(CELL.backbone, weights="test_bgr_r18"))
        model = build_detector(spec, 3)
    t = model.model.transform
    assert t.image_mean == pytest.approx([123.675 / 255, 116.28 / 255, 103.53 / 255])
    assert t.image_std == pytest.approx([1 / 255] * 3)
    assert model.body.channel_order == "BGR"


def test_backbone_options_enter_fingerprints_only_when_set():
    from benchmark.spec import spec_from_json
    from tests.test_registries import CELL

    assert set(CELL.to_json()["backbone"]) == {"name", "weights", "freeze_at"}
    partial = replace(CELL, backbone=replace(CELL.backbone, strict=False, drop_path=0.1))
    assert partial.to_json()["backbone"]["strict"] is False
    assert partial.fingerprint != CELL.fingerprint
    assert spec_from_json(partial.to_json()) == partial
    assert spec_from_json(CELL.to_json()).fingerprint == CELL.fingerprint
    with pytest.raises(ConfigError, match="resnet18 has no stochastic depth"):
        build_body("resnet18", "none", None, drop_path=0.1)


def test_native_layout_for_the_demo_body(wdir):
    """A state dict saved from ``efficientnet_lite_pytorch``'s own network (``_conv_stem``,
    ``_blocks.i``, ``_fc``) loads into the demo body from a path."""
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(0)
    src = EfficientNet.from_name("efficientnet-lite0").state_dict()
    path = wdir / "lite0.pth"
    torch.save(src, path)
    body = build_body("efficientnet_lite0", str(path), None)
    assert torch.equal(body.stages[4][-1]._project_conv.weight,
                       src["_blocks.15._project_conv.weight"])
    assert body.weights_report.ignored == ("_fc.weight", "_fc.bias")


# every converter has a test above that writes a checkpoint in its source's layout
TESTED_CONVERTERS = {
    "native": test_native_layout_for_the_demo_body,
    "torchvision": test_torchvision_layout_swsl,
    "timm": test_timm_release_tf_efficientnet,
    "fb_convnext": test_fb_convnext_release,
    "torchvision_convnext": test_torchvision_files_of_timm_architectures,
    "torchvision_efficientnet": test_torchvision_files_of_timm_architectures,
    "msft_swin": test_msft_swin_release,
    "msra_pkl": test_msra_pkl_maps_caffe2_names_bgr_and_stride_in_1x1,
    "module_prefix": test_module_prefix_augmix,
    "robustness": test_robustness_library_drops_attacker_and_normaliser,
    "timm_vit": test_timm_vit_releases_map_every_key,
}


def test_every_registered_converter_has_a_synthetic_checkpoint_test():
    assert set(CONVERTERS.names()) == set(TESTED_CONVERTERS)
