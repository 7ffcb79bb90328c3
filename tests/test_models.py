"""The model zoo: parameter counts against the published figures, and eval
outputs equal to each model's PyTorch twin (tests/torch_twins.py, torchvision's
architectures and names) after the weights cross over, both ways."""
import io
import contextlib

import numpy as np
import pytest

import fastconv
from conftest import assert_close
from fastconv import Tensor, models, nn

# name: (fastconv builder, input shape for the counts, published count)
COUNTS = {
    "lenet5": (models.LeNet5, (1, 1, 28, 28), 61_706),
    "alexnet": (models.alexnet, (1, 3, 224, 224), 61_100_840),
    "googlenet": (models.googlenet, (1, 3, 224, 224), 6_624_904),
    "resnet18": (models.resnet18, (1, 3, 224, 224), 11_689_512),
    "resnet34": (models.resnet34, (1, 3, 224, 224), 21_797_672),
    "resnet50": (models.resnet50, (1, 3, 224, 224), 25_557_032),
    "resnet20": (models.resnet20, (1, 1, 28, 28), 272_186),  # He et al. 2016: 0.27 M
}


@pytest.mark.parametrize("name", COUNTS)
def test_parameter_counts_match_the_published_figures(name):
    build, shape, expected = COUNTS[name]
    with contextlib.redirect_stdout(io.StringIO()):
        assert build().summary(shape) == expected


def _twin(torch, name):
    import torch_twins as T
    return {
        "lenet5": T.LeNet5, "tutorial": T.TutorialCNN,
        "alexnet": lambda: T.alexnet(10), "alexnet_original": lambda: T.alexnet(10, original=True),
        "resnet18": lambda: T.ResNet(T.BasicBlock, (2, 2, 2, 2), 10),
        "resnet34": lambda: T.ResNet(T.BasicBlock, (3, 4, 6, 3), 10),
        "resnet50": lambda: T.ResNet(T.Bottleneck, (3, 4, 6, 3), 10),
        "googlenet": lambda: T.GoogLeNet(10), "resnet20": T.CifarResNet, "inception": T.InceptionNet,
        "textcnn": lambda: T.TextCNN(50, 3, 16, (3, 4, 5), 8, padding_idx=0),
    }[name]()


# name: (fastconv builder, input); ImageNet networks at 64x64 to keep the suite quick
TWINS = {
    "lenet5": (models.LeNet5, (2, 1, 28, 28)),
    "tutorial": (models.TutorialCNN, (2, 1, 28, 28)),
    "alexnet": (lambda: models.alexnet(10), (2, 3, 64, 64)),
    "alexnet_original": (lambda: models.alexnet(10, original=True), (2, 3, 64, 64)),
    "resnet18": (lambda: models.resnet18(10), (2, 3, 64, 64)),
    "resnet34": (lambda: models.resnet34(10), (1, 3, 64, 64)),
    "resnet50": (lambda: models.resnet50(10), (1, 3, 64, 64)),
    "googlenet": (lambda: models.googlenet(10), (2, 3, 64, 64)),
    "resnet20": (models.resnet20, (2, 1, 28, 28)),
    "inception": (models.InceptionNet, (2, 1, 28, 28)),
    "textcnn": (lambda: models.TextCNN(50, 3, embedding_dim=16, filters=8, padding_idx=0), (3, 12)),
}


def _randomize_batch_norm(model, rng):
    """Non-trivial statistics and affine weights, so eval-mode batch norm is
    not the identity it starts as."""
    for _, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            c = module.weight.shape[0]
            module.running_mean[...] = rng.normal(0, 0.2, c)
            module.running_var[...] = rng.uniform(0.5, 1.5, c)
            module.weight.data[...] = rng.uniform(0.5, 1.5, c)
            module.bias.data[...] = rng.normal(0, 0.2, c)


def _input(name, shape, rng):
    if name == "textcnn":
        return rng.integers(0, 50, shape)
    return rng.standard_normal(shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", TWINS)
def test_eval_output_matches_the_pytorch_twin(name, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    nn.manual_seed(0)
    build, shape = TWINS[name]
    model = build()
    _randomize_batch_norm(model, rng)
    model.to(dtype).eval()
    twin = _twin(torch, name).to(torch.float32 if dtype == np.float32 else torch.float64).eval()
    missing, unexpected = twin.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()},
                                               strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing)
    x = _input(name, shape, rng)
    with fastconv.no_grad():
        y = model(Tensor(x if name == "textcnn" else x.astype(dtype))).data
    with torch.no_grad():
        expected = twin(torch.from_numpy(x if name == "textcnn" else x.astype(dtype))).numpy()
    assert_close(y, expected, dtype)


@pytest.mark.parametrize("name", ["resnet18", "googlenet", "alexnet_original", "textcnn"])
def test_a_pytorch_checkpoint_converts_and_loads_without_torch(name, tmp_path, monkeypatch):
    """torch.save(state_dict) -> python -m fastconv.convert -> .npz -> load;
    the load runs with torch made unimportable."""
    torch = pytest.importorskip("torch")
    from fastconv import convert
    torch.manual_seed(0)
    twin = _twin(torch, name).eval()
    for module in twin.modules():  # non-trivial batch-norm statistics, as after training
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    torch.save({"state_dict": twin.state_dict()}, tmp_path / "model.pth")
    assert convert.main([str(tmp_path / "model.pth"), str(tmp_path / "model.npz")]) == 0
    build, shape = TWINS[name]
    x = _input(name, shape, np.random.default_rng(1))
    with torch.no_grad():
        expected = twin(torch.from_numpy(x if name == "textcnn" else x.astype(np.float32))).numpy()
    monkeypatch.setitem(__import__("sys").modules, "torch", None)
    model = build().load(tmp_path / "model.npz").eval()
    with fastconv.no_grad():
        y = model(Tensor(x if name == "textcnn" else x.astype(np.float32))).data
    assert_close(y, expected, np.float32)


def test_load_state_dict_takes_pytorch_tensors_directly():
    torch = pytest.importorskip("torch")
    twin = _twin(torch, "resnet20")
    model = models.resnet20()
    model.load_state_dict({k: v.requires_grad_() if v.is_floating_point() else v  # parameters as they train
                           for k, v in twin.state_dict(keep_vars=True).items()})
    np.testing.assert_array_equal(model.layer2[0].downsample[0].weight.data,
                                  twin.layer2[0].downsample[0].weight.detach().numpy())


def test_convert_refuses_what_is_not_a_state_dict():
    from fastconv.convert import state_dict_arrays
    with pytest.raises(ValueError, match="convert: expected a state dict"):
        state_dict_arrays([1, 2])
    with pytest.raises(ValueError, match="convert: 'epoch' is a int"):
        state_dict_arrays({"epoch": 3})


def test_googlenet_auxiliary_heads_train_and_stay_out_of_eval():
    nn.manual_seed(0)
    model = models.googlenet(10, aux_logits=True)
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32))
    logits, aux2, aux1 = model(x)
    assert logits.shape == aux1.shape == aux2.shape == (2, 10)
    (logits.sum() + aux1.sum() + aux2.sum()).backward()
    assert model.aux1.fc2.weight.grad is not None
    with fastconv.no_grad():
        assert model.eval()(x).shape == (2, 10)


def test_text_cnn_trains_a_step_and_ignores_padding():
    nn.manual_seed(0)
    model = models.TextCNN(30, 2, embedding_dim=8, filters=4, padding_idx=0)
    tokens = np.random.default_rng(0).integers(0, 30, (5, 9))
    loss = fastconv.functional.cross_entropy(model(Tensor(tokens)), np.array([0, 1, 1, 0, 1]))
    loss.backward()
    assert np.array_equal(model.embedding.weight.grad[0], np.zeros(8))
    assert all(p.grad is not None for p in model.parameters())


def test_text_cnn_summary_takes_token_ids(capsys):
    model = models.TextCNN(100, 2, embedding_dim=16, filters=4)
    assert model.summary((2, 20), dtype=np.int64) == 100 * 16 + 3 * 4 + 16 * 4 * (3 + 4 + 5) + 12 * 2 + 2
    out = capsys.readouterr().out
    assert "Conv1d" in out and f"{2 * 4 * 18 * 16 * 3:,}" in out  # the width-3 conv: outputs x taps


def test_convert_names_a_missing_or_unreadable_checkpoint(tmp_path, capsys):
    pytest.importorskip("torch")
    from fastconv import convert
    assert convert.main([str(tmp_path / "missing.pth"), str(tmp_path / "out.npz")]) == 2
    assert "missing.pth" in capsys.readouterr().err
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    assert convert.main([str(tmp_path / "junk.pth"), str(tmp_path / "out.npz")]) == 2
    assert "junk.pth" in capsys.readouterr().err and not (tmp_path / "out.npz").exists()
