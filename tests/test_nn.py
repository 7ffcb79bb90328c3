"""Modules: parameters, initialization, train/eval, state dicts, checkpoints, summary."""
import numpy as np
import pytest

import fastconv
from fastconv import Tensor, models, nn
from fastconv.models import InceptionBlock, LeNet5, ResidualBlock, TutorialCNN


def conv_params(cin, cout, k, groups=1, bias=True):
    return cout * (cin // groups) * k * k + (cout if bias else 0)


def test_summary_counts_match_the_formula(capsys):
    lenet = conv_params(1, 6, 5) + conv_params(6, 16, 5) + 400 * 120 + 120 + 120 * 84 + 84 + 84 * 10 + 10
    assert LeNet5().summary((1, 1, 28, 28)) == lenet
    tutorial = conv_params(1, 64, 3) + conv_params(64, 128, 3) + 6272 * 1024 + 1024 + 1024 * 10 + 10
    assert TutorialCNN().summary((2, 1, 28, 28)) == tutorial
    out = capsys.readouterr().out
    assert "(2, 128, 7, 7)" in out and "6,423,552" in out and f"{tutorial:,}" in out
    grouped = nn.Conv2d(8, 12, 3, groups=4)
    assert grouped.summary((1, 8, 5, 5)) == conv_params(8, 12, 3, groups=4)


def test_named_parameters_and_state_dict_round_trip(tmp_path):
    nn.manual_seed(0)
    a = ResidualBlock(4, 8, stride=2)
    names = [n for n, _ in a.named_parameters()]
    assert names[:2] == ["conv1.weight", "bn1.weight"] and "downsample.0.weight" in names
    state = a.state_dict()
    assert "bn1.running_mean" in state and "downsample.1.running_var" in state
    nn.manual_seed(1)
    b = ResidualBlock(4, 8, stride=2)
    b.load_state_dict(state)
    x = Tensor(np.random.default_rng(0).standard_normal((2, 4, 8, 8)).astype(np.float32))
    a.eval(), b.eval()
    assert np.array_equal(a(x).data, b(x).data)
    a.save(tmp_path / "a.npz")
    c = ResidualBlock(4, 8, stride=2).load(tmp_path / "a.npz").eval()
    assert np.array_equal(a(x).data, c(x).data)


def test_load_state_dict_rejects_mismatches():
    m = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="missing keys"):
        m.load_state_dict({"weight": np.zeros((2, 3))})
    with pytest.raises(ValueError, match="shape"):
        m.load_state_dict({"weight": np.zeros((3, 3)), "bias": np.zeros(2)})


def test_initialization_is_pytorch_like_and_seedable():
    nn.manual_seed(3)
    a = nn.Conv2d(4, 8, 3)
    nn.manual_seed(3)
    b = nn.Conv2d(4, 8, 3)
    assert np.array_equal(a.weight.data, b.weight.data)
    bound = 1 / np.sqrt(4 * 9)
    assert np.abs(a.weight.data).max() <= bound and np.abs(a.weight.data).max() > 0.8 * bound
    assert a.weight.dtype == np.float32 and a.weight.requires_grad


def test_train_eval_switches_dropout_and_batch_norm():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout(0.5), nn.Flatten())
    x = Tensor(np.random.default_rng(0).standard_normal((4, 1, 5, 5)).astype(np.float32))
    model.train()
    model(x)
    bn = model[1]
    assert not np.allclose(bn.running_mean, 0)
    model.eval()
    assert all(not m.training for _, m in model.named_modules())
    assert np.array_equal(model(x).data, model(x).data)


def test_batch_norm_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((4, 3, 5, 5)).astype(np.float32)
    mine, theirs = nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    for _ in range(3):
        out = mine(Tensor(x)).data
        ref = theirs(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(mine.running_var, theirs.running_var.numpy(), rtol=1e-5)


def test_inception_block_concatenates_branches():
    block = InceptionBlock(8, 4, 3, 6, 2, 3, 5)
    y = block(Tensor(np.zeros((2, 8, 7, 7), np.float32)))
    assert y.shape == (2, 4 + 6 + 3 + 5, 7, 7)
    y.sum().backward()
    assert all(p.grad is not None for p in block.parameters())


def test_module_layers_match_functional():
    nn.manual_seed(0)
    convt = nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1)
    x = np.random.default_rng(0).standard_normal((1, 3, 4, 4)).astype(np.float32)
    assert convt(Tensor(x)).shape == (1, 4, 8, 8)
    assert np.allclose(convt(Tensor(x)).data, fastconv.conv_transpose2d(x, convt.weight.data, convt.bias.data, 2, 1, 1))
    assert nn.AvgPool2d(2)(Tensor(x)).shape == (1, 3, 2, 2)
    assert nn.Tanh()(Tensor(x)).shape == x.shape and nn.Sigmoid()(Tensor(x)).shape == x.shape


def test_sequential_fusions_give_the_layer_by_layer_results_and_gradients():
    """Conv2d+ReLU+MaxPool2d (pooled before the ReLU) and Linear+ReLU (ReLU
    in the GEMM's epilogue) against the same layers called one by one."""
    nn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(5, 6, 3), nn.ReLU(),
                          nn.Flatten(), nn.Linear(6 * 2 * 2, 7), nn.ReLU(), nn.Linear(7, 3))
    x = np.random.default_rng(0).standard_normal((4, 2, 8, 8))
    upstream = np.random.default_rng(1).standard_normal((4, 3))

    def run(forward):
        model.zero_grad()
        y = forward(Tensor(x))
        y.backward(upstream)
        return [y.data] + [p.grad for p in model.parameters()]
    fused = run(model)
    one_by_one = run(lambda t: [t := layer(t) for layer in model.layers][-1])
    for a, b in zip(fused, one_by_one):
        np.testing.assert_array_equal(a, b)


def test_checkpoints_are_written_whole_and_bad_ones_named(tmp_path, monkeypatch):
    nn.manual_seed(0)
    model, path = LeNet5(), tmp_path / "lenet.npz"
    model.save(path)
    good = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        LeNet5().save(path)  # a crash mid-save keeps the old checkpoint whole, and no temporary file
    monkeypatch.undo()
    assert path.read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["lenet.npz"]
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good[:len(good) // 2])
    with pytest.raises(ValueError, match=r"load: .*truncated\.npz is not a readable checkpoint"):
        LeNet5().load(truncated)
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"junk\.npz"):
        LeNet5().load(tmp_path / "junk.npz")


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_models_run_an_empty_batch(name):
    """API.md: a batch of 0 images gives an empty result of the right shape
    (Flatten once asked NumPy to infer -1 from zero elements and failed)."""
    model = models.MODELS[name]()
    model.eval()
    with fastconv.no_grad():
        y = model(fastconv.Tensor(np.zeros((0, 1, 28, 28), np.float32)))
    assert y.shape == (0, 10) and y.dtype == np.float32


def test_text_and_1d_layers_match_the_array_functions_and_their_gradients():
    nn.manual_seed(0)
    x = np.random.default_rng(0).permutation(2 * 4 * 12).reshape(2, 4, 12) / 7.0  # distinct: no ties
    gy = np.random.default_rng(1).standard_normal
    for layer, forward, backward in [
            (nn.MaxPool1d(3, 2, 1), lambda v: fastconv.max_pool1d(v, 3, 2, 1),
             lambda g, v: fastconv.max_pool1d_backward(g, fastconv.max_pool1d(v, 3, 2, 1, return_indices=True)[1],
                                                       v.shape)),
            (nn.AvgPool1d(4, 2), lambda v: fastconv.avg_pool1d(v, 4, 2),
             lambda g, v: fastconv.avg_pool1d_backward(g, v.shape, 4, 2)),
            (nn.AdaptiveMaxPool1d(1), lambda v: fastconv.adaptive_max_pool1d(v, 1),
             lambda g, v: fastconv.max_pool1d_backward(g, fastconv.adaptive_max_pool1d(v, 1, True)[1], v.shape)),
            (nn.Identity(), lambda v: v, lambda g, v: g)]:
        t = Tensor(x, requires_grad=True)
        y = layer(t)
        g = gy(y.shape)
        y.backward(g)
        np.testing.assert_array_equal(y.data, forward(x))
        np.testing.assert_array_equal(t.grad, backward(g, x))
    conv = nn.Conv1d(4, 6, 3, padding=1)
    assert conv.weight.shape == (6, 4, 3)
    np.testing.assert_array_equal(conv(Tensor(x)).data, fastconv.conv1d(x, conv.weight.data, conv.bias.data, padding=1))
    x4 = Tensor(np.random.default_rng(2).standard_normal((1, 2, 5, 6)), requires_grad=True)
    y = nn.AdaptiveMaxPool2d((2, 3))(x4)
    y.backward(np.ones(y.shape))
    assert y.shape == (1, 2, 2, 3) and x4.grad.sum() == 12


def test_state_dict_names_follow_pytorch_and_old_checkpoints_still_load(tmp_path):
    nn.manual_seed(0)
    model = LeNet5()
    names = list(model.state_dict())
    assert names[:2] == ["features.0.weight", "features.0.bias"] and "classifier.5.bias" in names
    old = {name.replace("features.", "features.layers.").replace("classifier.", "classifier.layers."): value * 2
           for name, value in model.state_dict().items()}
    np.savez(tmp_path / "old.npz", **old)
    reloaded = LeNet5().load(tmp_path / "old.npz")
    np.testing.assert_array_equal(reloaded.features[0].weight.data, 2 * model.features[0].weight.data)


def test_to_converts_parameters_and_buffers():
    block = ResidualBlock(2, 3, stride=2).to(np.float64)
    assert all(p.dtype == np.float64 for p in block.parameters())
    assert block.bn1.running_mean.dtype == np.float64
    y = block(Tensor(np.ones((1, 2, 4, 4))))
    assert y.dtype == np.float64
    with pytest.raises(TypeError, match="Module.to"):
        block.to(np.int32)


def _summary_rows(model, shape, capsys):
    model.summary(shape)
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines[1:] if not line.startswith(("total", "activations"))]
    total = next(line for line in lines if line.startswith("total")).split()
    return rows, total, lines[-1]


def test_summary_teaches_mult_adds_receptive_fields_and_memory(capsys):
    """Figures from outside the code: LeNet-5's first conv does 6 x 28 x 28
    x 25 = 117,600 multiply-adds an image and its fields grow 5, 6, 14, 16
    pixels (strides 1, 2, 2, 4); AlexNet (torchvision's) does 0.71 G
    multiply-adds with a 195-pixel field (Araujo et al. 2019, "Computing
    receptive fields of convolutional neural networks"); ResNet-18 1.81 G
    (torchvision's model table) with a 435-pixel field."""
    rows, total, memory = _summary_rows(LeNet5(), (2, 1, 28, 28), capsys)
    assert rows[0][0] == "Conv2d" and rows[0][-4] == f"{2 * 117_600:,}"
    fields = [" ".join(r[-3:]) for r in rows if r[0] in ("Conv2d", "MaxPool2d")]
    assert fields == ["5 / 1", "6 / 2", "14 / 2", "16 / 4"]
    assert rows[-1][-1] == "all" and total[1] == "61,706"
    outputs = 2 * (6 * 28 * 28 * 2 + 6 * 14 * 14 + 16 * 10 * 10 * 2 + 16 * 5 * 5 + 400 + 120 * 2 + 84 * 2 + 10) * 4
    assert memory.startswith(f"activations: {outputs / 2 ** 20:,.1f} MiB") and "batch of 2" in memory
    for build, macs, field in ((models.alexnet, 0.714e9, "195 / 32"), (models.resnet18, 1.814e9, "435 / 32")):
        rows, total, _ = _summary_rows(build(), (1, 3, 224, 224), capsys)
        assert abs(int(total[2].replace(",", "")) - macs) < 0.005e9
        assert [" ".join(r[-3:]) for r in rows if r[-1] != "all"][-1] == field  # before global pooling
