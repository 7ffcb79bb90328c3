import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import fastconv
from fastconv import _C, conv

# Property fuzzing (test_fuzz.py): "ci" runs in seconds, "long" (chosen
# with --hypothesis-profile=long) for a hunt of many minutes. The fixtures
# Hypothesis warns about (nan_outputs) only patch allocators, so reusing
# them across examples is sound.
_FUZZ = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("ci", max_examples=150, **_FUZZ)
settings.register_profile("long", max_examples=20_000, **_FUZZ)
if settings.get_current_profile_name() == "default":  # --hypothesis-profile was not given
    settings.load_profile("ci")

TOL = {np.float32: 1e-4, np.float64: 1e-10}


def assert_close(actual, expected, dtype):
    """Relative agreement for `dtype`, scaled by the largest expected value;
    the failure message names the worst index, expected and actual."""
    assert actual.dtype == np.dtype(dtype), f"dtype {actual.dtype}, expected {np.dtype(dtype)}"
    assert actual.shape == expected.shape, f"shape {actual.shape}, expected {expected.shape}"
    rtol = TOL[dtype]
    scale = max(1.0, float(np.abs(expected).max(initial=0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def assert_raises_naming(call, exc, words):
    """call() raises exc, and its message contains every one of words."""
    with pytest.raises(exc) as info:
        call()
    for word in words:
        assert word in str(info.value), f"{word!r} not in {str(info.value)!r}"


def _nan_empty(shape, dtype=float, *args, **kwargs):
    out = np.empty(shape, dtype, *args, **kwargs)
    if out.dtype.kind == "f":
        out.fill(np.nan)
    elif out.dtype.kind == "i":
        out.fill(np.iinfo(out.dtype).min)
    return out


@pytest.fixture(autouse=True)
def nan_outputs(monkeypatch):
    """Every output starts as NaN, so an element a kernel forgets to write fails."""
    import fastconv.conv
    import fastconv.pool
    monkeypatch.setattr(fastconv.conv, "_empty", _nan_empty)
    monkeypatch.setattr(fastconv.pool, "_empty", _nan_empty)


@pytest.fixture(params=[isa for isa in _C.ISAS if _C.isa_supported(isa)])
def isa(request):
    """Runs a test under each GEMM microkernel this CPU supports."""
    before = _C.get_isa()
    _C.set_isa(request.param)
    yield request.param
    _C.set_isa(before)


@pytest.fixture
def threads():
    """Restores the thread count a test changes."""
    before = fastconv.get_num_threads()
    yield fastconv.set_num_threads
    fastconv.set_num_threads(before)
