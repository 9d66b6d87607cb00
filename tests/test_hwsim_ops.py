"""hwsim/ops.py: the event-driven convolution equals the im2col GEMM exactly; sum-pooling equals the window sums."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atsnn.hwsim import ops


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), k=st.integers(1, 4), stride=st.integers(1, 3), pad=st.integers(0, 2),
       max_count=st.sampled_from([1, 1, 4, 255]), density=st.floats(0.0, 1.0))
def test_event_conv_equals_gemm(seed, k, stride, pad, max_count, density):
    rng = np.random.default_rng(seed)
    b, cin, cout = int(rng.integers(1, 4)), int(rng.integers(1, 5)), int(rng.integers(1, 9))
    h, w = int(rng.integers(k, 10)), int(rng.integers(k, 10))
    pad = min(pad, k - 1)
    x = rng.integers(1, max_count + 1, (b, cin, h, w)) * (rng.random((b, cin, h, w)) < density)
    wt = rng.integers(-127, 128, (cout, cin, k, k)).astype(np.float32)
    got = ops.conv2d_events(x.astype(np.int64), wt, (stride, stride), (pad, pad))
    want = ops.conv2d(x.astype(np.float32), wt, (stride, stride), (pad, pad))
    assert got.shape == want.shape
    assert np.array_equal(got, want)


@pytest.mark.parametrize("density", [0.05, 0.9])
def test_apply_synapse_takes_either_path_with_the_same_result(density):
    """Sparse spike maps go through the event kernel, dense ones through the GEMM; both agree."""
    from atsnn.program import Synapse
    rng = np.random.default_rng(1)
    x = (rng.random((3, 4, 8, 8)) < density).astype(np.uint8)
    w = rng.integers(-127, 128, (5, 4, 3, 3)).astype(np.int64)
    syn = Synapse(source="l0", op="conv2d", weight=w, input_shape=(4, 8, 8), stride=(1, 1), padding=(1, 1))
    got = ops.apply_synapse(syn, x, w.astype(np.float32))
    want = ops.conv2d(x.astype(np.float32), w.astype(np.float32), (1, 1), (1, 1))
    assert np.array_equal(np.asarray(got), want)
    assert (np.count_nonzero(x) <= ops.EVENT_DENSITY_MAX * x.size) == (density < 0.5)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 3),
       sw=st.integers(1, 3), ph=st.integers(0, 2), pw=st.integers(0, 2),
       dtype=st.sampled_from([np.uint8, np.bool_, np.int64, np.float32]))
def test_sum_pool_equals_window_sum(seed, kh, kw, sh, sw, ph, pw, dtype):
    """The offset-sum pooling equals the sum over every window (any kernel, stride, padding), same dtype."""
    from numpy.lib.stride_tricks import sliding_window_view
    rng = np.random.default_rng(seed)
    ph, pw = min(ph, kh - 1), min(pw, kw - 1)
    b, c = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    h, w = int(rng.integers(kh, 10)), int(rng.integers(kw, 10))
    x = rng.integers(0, 3, (b, c, h, w)).astype(dtype)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    want = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw].sum(axis=(4, 5))
    got = ops.sum_pool(x, (kh, kw), (sh, sw), (ph, pw))
    assert got.dtype == want.dtype
    assert np.array_equal(got, want)
