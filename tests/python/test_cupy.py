"""cupy arrays (a DLPack producer other than torch): results equal the float64 reference,
outputs are cupy arrays, work runs on cupy's current stream. Needs cupy and a GPU."""
import numpy as np
import pytest

cupy = pytest.importorskip("cupy", reason="cupy is not installed (the device image has it)")
import cpattn  # noqa: E402
from conftest import reference_merge  # noqa: E402

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("n,d", [(2, 128), (3, 96), (8, 512)])
def test_merge_and_correct_on_cupy_arrays(rng, n, d):
    outs = rng.standard_normal((n, 6, 4, d)).astype(np.float32)
    lses = (rng.standard_normal((n, 6, 4)) * 3).astype(np.float32)
    lses[:, 0, 0] = -np.inf  # a row with no partial
    ref_out, ref_lse, w = reference_merge(outs, lses)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        out, lse = cpattn.merge_attn_states(cupy.asarray(outs), cupy.asarray(lses))
        part = cupy.asarray(outs[1])
        corrected, clse = cpattn.correct_attn_out(part, cupy.asarray(lses), 1)
    stream.synchronize()
    assert isinstance(out, cupy.ndarray) and isinstance(lse, cupy.ndarray) and corrected is part
    np.testing.assert_allclose(cupy.asnumpy(out), ref_out, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cupy.asnumpy(lse), ref_lse, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cupy.asnumpy(corrected), w[1][..., None] * outs[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cupy.asnumpy(clse), ref_lse, rtol=1e-5, atol=1e-5)


def test_pack_unpack_on_cupy_arrays(rng):
    lengths = np.array([3, 0, 5, 1], np.int64)
    x = rng.standard_normal((int(lengths.sum()), 7)).astype(np.float32)
    packed = cpattn.pack_seq(cupy.asarray(x), cupy.asarray(lengths), pad_value=0.0)
    back = cpattn.unpack_seq(packed, cupy.asarray(lengths))
    assert isinstance(packed, cupy.ndarray) and packed.shape == (4, 5, 7)
    np.testing.assert_array_equal(cupy.asnumpy(back), x)
    np.testing.assert_array_equal(cupy.asnumpy(packed[2]), x[3:8])
