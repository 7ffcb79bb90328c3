"""Every bad input of API.md's Errors section: the right exception type and
a message naming the function and the argument."""
import numpy as np
import pytest

import fastconv
from conftest import assert_raises_naming

x4 = np.ones((2, 4, 8, 8))
w4 = np.ones((6, 4, 3, 3))

CASES = [
    # (call, exception, words the message must contain)
    (lambda: fastconv.conv2d(np.ones((4, 8, 8)), w4), ValueError, ["conv2d", "input", "(4, 8, 8)"]),
    (lambda: fastconv.conv2d(x4, np.ones((6, 4, 3))), ValueError, ["conv2d", "weight"]),
    (lambda: fastconv.conv2d(x4, np.ones((6, 2, 3, 3))), ValueError,
     ["conv2d", "input has 4 channels but weight expects 2", "weight.shape[1]=2 x groups=1"]),
    (lambda: fastconv.conv2d(x4, w4, groups=3), ValueError, ["conv2d", "groups=3"]),
    (lambda: fastconv.conv2d(x4, np.ones((5, 2, 3, 3)), groups=2), ValueError, ["conv2d", "groups=2", "5 output"]),
    (lambda: fastconv.conv2d(x4, w4, groups=0), ValueError, ["conv2d", "groups", "0"]),
    (lambda: fastconv.conv2d(x4, w4, groups=1.5), TypeError, ["conv2d", "groups"]),
    (lambda: fastconv.conv2d(x4, w4, stride=0), ValueError, ["conv2d", "stride", "0"]),
    (lambda: fastconv.conv2d(x4, w4, stride=(1, 2, 3)), ValueError, ["conv2d", "stride"]),
    (lambda: fastconv.conv2d(x4, w4, stride="2"), TypeError, ["conv2d", "stride"]),
    (lambda: fastconv.conv2d(x4, w4, dilation=-1), ValueError, ["conv2d", "dilation", "-1"]),
    (lambda: fastconv.conv2d(x4, w4, padding=-1), ValueError, ["conv2d", "padding", "-1"]),
    (lambda: fastconv.conv2d(x4, w4, padding="full"), ValueError, ["conv2d", "padding", "full"]),
    (lambda: fastconv.conv2d(x4, w4, padding=((1, 2, 3), (0, 0))), ValueError, ["conv2d", "padding"]),
    (lambda: fastconv.conv2d(x4, w4, padding=True), TypeError, ["conv2d", "padding"]),
    (lambda: fastconv.conv2d(x4, np.ones((6, 4, 9, 3))), ValueError, ["conv2d", "output height", "0"]),
    (lambda: fastconv.conv2d(x4, np.ones((6, 4, 3, 3)), dilation=(1, 5)), ValueError, ["conv2d", "output width"]),
    (lambda: fastconv.conv2d(x4, np.ones((0, 4, 3, 3))), ValueError, ["conv2d", "weight", "empty"]),
    (lambda: fastconv.conv2d(x4, w4, bias=np.ones(5)), ValueError, ["conv2d", "bias", "(6,)"]),
    (lambda: fastconv.conv2d(x4, w4, algorithm="fft"), ValueError, ["conv2d", "algorithm", "fft"]),
    (lambda: fastconv.conv2d(x4.astype(complex), w4), TypeError, ["conv2d", "input", "complex"]),
    (lambda: fastconv.conv2d(x4, w4.astype(object)), TypeError, ["conv2d", "weight", "object"]),
    (lambda: fastconv.conv2d(np.array([["a"]]), w4), TypeError, ["conv2d", "input"]),
    (lambda: fastconv.conv2d_backward(np.ones((2, 6, 5, 5)), x4, w4), ValueError,
     ["conv2d_backward", "grad_output", "(2, 6, 6, 6)"]),
    (lambda: fastconv.conv2d_backward(np.ones((2, 6, 6, 6)), x4, w4, needs=("inputs",)), ValueError,
     ["conv2d_backward", "needs", "inputs"]),
    # conv1d_backward names itself, not the conv2d_backward it runs on (found by tests/test_fuzz.py)
    (lambda: fastconv.conv1d_backward(np.ones((2, 3, 6)), np.ones((2, 4, 8)), np.ones((3, 4, 3)), needs="hessian"),
     ValueError, ["conv1d_backward", "needs", "hessian"]),
    (lambda: fastconv.conv1d_backward(np.ones((2, 3, 6)), np.ones((2, 4, 8)), np.ones((3, 4, 3)), algorithm="fft"),
     ValueError, ["conv1d_backward", "algorithm", "fft"]),
    (lambda: fastconv.conv1d(np.ones((2, 4, 8, 8)), np.ones((3, 4, 3))), ValueError, ["conv1d", "input"]),
    (lambda: fastconv.conv1d(np.ones((2, 4, 8)), np.ones((3, 4, 9))), ValueError, ["conv1d", "output length"]),
    (lambda: fastconv.conv1d(np.ones((2, 4, 8)), np.ones((3, 4, 3)), stride=(1, 1)), ValueError, ["conv1d", "stride"]),
    (lambda: fastconv.conv_transpose2d(x4, np.ones((3, 2, 3, 3))), ValueError,
     ["conv_transpose2d", "4 channels", "weight.shape[0]=3"]),
    (lambda: fastconv.conv_transpose2d(x4, np.ones((4, 2, 3, 3)), stride=2, output_padding=2), ValueError,
     ["conv_transpose2d", "output_padding"]),
    (lambda: fastconv.conv_transpose2d(np.ones((1, 4, 1, 1)), np.ones((4, 2, 1, 1)), padding=1), ValueError,
     ["conv_transpose2d", "output height"]),
    (lambda: fastconv.conv_transpose2d(x4, np.ones((4, 2, 3, 3)), groups=3), ValueError, ["conv_transpose2d", "groups=3"]),
    (lambda: fastconv.conv_transpose2d(x4, np.ones((4, 2, 3, 3)), bias=np.ones(3)), ValueError,
     ["conv_transpose2d", "bias", "(2,)"]),
    (lambda: fastconv.unfold(np.ones((2, 3, 4)), 2), ValueError, ["unfold", "input"]),
    (lambda: fastconv.unfold(x4, 9), ValueError, ["unfold", "output height"]),
    (lambda: fastconv.unfold(x4, 0), ValueError, ["unfold", "kernel_size"]),
    (lambda: fastconv.fold(np.ones((2, 10, 9)), (4, 4), 2), ValueError, ["fold", "shape[1]=10", "kH*kW=4"]),
    (lambda: fastconv.fold(np.ones((2, 8, 10)), (4, 4), 2), ValueError, ["fold", "shape[2]=10", "9"]),
    (lambda: fastconv.set_num_threads(0), ValueError, ["set_num_threads", "n"]),
    (lambda: fastconv.set_num_threads("2"), TypeError, ["set_num_threads", "n"]),
]


@pytest.mark.parametrize("call, exc, words", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_bad_input_raises_a_clear_error(call, exc, words):
    assert_raises_naming(call, exc, words)
