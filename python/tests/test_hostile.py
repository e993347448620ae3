"""Hostile input through every Python entry point (issue 20): any dtype, byte order,
shape, stride and scale either works or raises ValueError / TypeError / MemoryError /
dlncheck.NumericalError naming the argument, never a Rust panic; a call that raises
leaves the accumulator exactly as it was; each array is read once.

The property tests run a bounded number of cases (DLNCHECK_HYPOTHESIS_EXAMPLES, default
40 each) so pytest keeps its speed; raise it for a longer local run."""

import os
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import dlncheck

EXAMPLES = int(os.environ.get("DLNCHECK_HYPOTHESIS_EXAMPLES", "40"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
ERRORS = (ValueError, TypeError, MemoryError, dlncheck.NumericalError)


def state(acc):
    return (acc.steps, acc.gain.tobytes(), acc.rho.tobytes(), acc.float32_source)


def problem(n=8, d=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    b = np.zeros(d)
    b[:2] = [1.5, -2.0]
    return X, X @ b


def test_add_that_raises_changes_nothing():
    acc = dlncheck.GainAccumulator(0.1, d=3)
    acc.add(0.3, np.array([0.5, -0.2, 0.1]))
    before = state(acc)
    # A factor 1 − γg = 0 on the last coordinate, after two that are fine.
    with pytest.raises(ValueError, match="exactly 0"):
        acc.add(1.0, np.array([0.5, 0.2, 1.0]))
    assert state(acc) == before
    with pytest.raises(ValueError, match="not finite"):
        acc.add(1.0, np.array([0.5, 0.2, np.inf]))
    assert state(acc) == before


def test_add_many_is_all_or_nothing_and_names_the_row():
    acc = dlncheck.GainAccumulator(0.1, d=3)
    before = state(acc)
    grads = np.full((5, 3), 0.1, dtype=np.float32)
    grads[3, 1] = 10.0  # γ g = 1 exactly at row 3, column 1
    with pytest.raises(ValueError, match=r"row 3 of 5: .*coordinate 1"):
        acc.add_many(np.full(5, 0.1), grads)
    assert state(acc) == before, "rows 0..2 must not have been applied, nor float32 noted"
    grads[3, 1] = 0.2
    acc.add_many(np.full(5, 0.1), grads)
    assert acc.steps == 5 and acc.float32_source
    with pytest.raises(ValueError, match="row 1 of 2: stepsize"):
        acc.add_many([0.1, -1.0], np.zeros((2, 3)))


def test_sizes_beyond_memory_are_memory_errors_not_aborts():
    with pytest.raises(MemoryError):
        dlncheck.GainAccumulator(0.1, d=10**10)
    with pytest.raises(MemoryError):
        dlncheck.GainAccumulator(0.1, d=10**30)
    with pytest.raises(ValueError, match="≥ 1"):
        dlncheck.GainAccumulator(0.1, d=-1)
    with pytest.raises(TypeError, match="d must be an integer"):
        dlncheck.GainAccumulator(0.1, d="3")
    huge = np.broadcast_to(np.float64(1.0), (10**6, 10**6))  # 8 TB, no memory of its own
    with pytest.raises(MemoryError):
        dlncheck.min_l2(huge, np.ones(10**6))


def test_dtypes_are_honoured_or_refused_by_name():
    g = np.array([0.25, -0.5, 0.125])
    ref = dlncheck.GainAccumulator(0.1, d=3)
    ref.add(0.1, g)
    for dtype in [">f8", "<f8", ">i8", "<i4"]:
        acc = dlncheck.GainAccumulator(0.1, d=3)
        acc.add(0.1, (g * (8 if "i" in dtype else 1)).astype(dtype))
        scale = 64 if "i" in dtype else 1
        np.testing.assert_allclose(acc.gain, ref.gain * scale, rtol=0.2 if scale > 1 else 0)
        assert not acc.float32_source
    for dtype in [">f4", "<f4", "f2"]:
        acc = dlncheck.GainAccumulator(0.1, d=3)
        acc.add(0.1, g.astype(dtype))
        np.testing.assert_array_equal(acc.gain, ref.gain)  # these values are exact in float16
        assert acc.float32_source, dtype
    acc = dlncheck.GainAccumulator(0.1, d=3)
    with pytest.raises(TypeError, match="grad is complex"):
        acc.add(0.1, g + 1j)
    with pytest.raises(TypeError, match="grad has dtype bool"):
        acc.add(0.1, np.array([True, False, True]))
    with pytest.raises(ValueError, match="grad must be a 1-D array"):
        acc.add(0.1, np.float64(1.0))
    with pytest.raises(ValueError, match="grad cannot be read"):
        acc.add(0.1, [[1.0], [1.0, 2.0]])
    assert acc.steps == 0 and not acc.float32_source


def test_basis_pursuit_at_extreme_scales():
    X, y = problem()
    ref = dlncheck.basis_pursuit(X, y)
    for sx, sy in [(1e200, 1.0), (1.0, 1e-200), (1e-150, 1e150), (1e155, 1.0)]:
        bp = dlncheck.basis_pursuit(X * sx, y * sy)
        assert bp["rel_gap"] <= 1e-9
        np.testing.assert_allclose(bp["beta"] * sx / sy, ref["beta"], rtol=1e-9, atol=1e-12)
    zero = dlncheck.basis_pursuit(X, np.zeros_like(y))
    assert zero["objective"] == 0 and not zero["beta"].any()


def test_a_buffer_written_by_another_thread_never_reaches_the_gain_as_nan():
    d = 200_000
    acc = dlncheck.GainAccumulator(0.1, d=d)
    g = np.full(d, 0.01)
    src = np.full(d, 0.01)
    stop = threading.Event()

    def writer():
        while not stop.is_set():
            np.multiply(src, np.nan, out=g)  # numpy releases the GIL in its kernels
            np.copyto(g, src)

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(200):
            try:
                acc.add(0.1, g)
            except ValueError as e:
                assert "not finite" in str(e)
            assert np.isfinite(acc.gain).all()
    finally:
        stop.set()
        t.join()


arrays = hnp.arrays(
    dtype=st.sampled_from(["<f8", ">f8", "<f4", ">f4", "f2", "<i8", ">i4", "u1", "?", "c16"]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
    elements=None,
)


def raises_or_adds(acc, call, steps):
    """`call()` on `acc` either raises one of ERRORS and leaves `acc` exactly as it was,
    or adds `steps` steps with a finite gain."""
    before = state(acc)
    try:
        call()
    except ERRORS:
        assert state(acc) == before
    else:
        assert acc.steps == before[0] + steps and np.isfinite(acc.gain).all()


@PROPERTY
@given(grad=arrays, stepsize=st.floats(allow_nan=True, allow_infinity=True))
def test_any_array_through_add(grad, stepsize):
    acc = dlncheck.GainAccumulator(0.1, d=4)
    acc.add(0.05, np.full(4, 0.1))
    raises_or_adds(acc, lambda: acc.add(stepsize, grad), 1)


@PROPERTY
@given(grads=arrays, stepsizes=arrays)
def test_any_arrays_through_add_many(grads, stepsizes):
    acc = dlncheck.GainAccumulator(0.1, d=4)
    raises_or_adds(acc, lambda: acc.add_many(stepsizes, grads), grads.shape[0] if grads.ndim == 2 else 0)


@PROPERTY
@given(
    scale_x=st.sampled_from([1e-300, 1e-150, 1e-20, 1.0, 1e20, 1e150, 1e300]),
    scale_y=st.sampled_from([0.0, 1e-300, 1e-150, 1.0, 1e150, 1e300]),
    order=st.sampled_from(["C", "F"]),
    byteorder=st.sampled_from(["<", ">"]),
)
def test_any_scale_through_the_solvers(scale_x, scale_y, order, byteorder):
    X, y = problem()
    X = np.asarray(X * scale_x, order=order).astype(byteorder + "f8")
    y = (y * scale_y).astype(byteorder + "f8")
    acc = dlncheck.GainAccumulator(0.1, d=20)
    for call in [
        lambda: dlncheck.basis_pursuit(X, y),
        lambda: dlncheck.min_l2(X, y),
        lambda: dlncheck.solve_implicit(X, y, acc),
        lambda: dlncheck.predict(X, y, acc, beta=np.zeros(20)),
    ]:
        try:
            out = call()
        except ERRORS as e:
            assert str(e)
            continue
        beta = out if isinstance(out, np.ndarray) else out.get("beta", out.get("beta_theory"))
        assert np.isfinite(beta).all()
        if scale_x * 1e-10 < np.abs(X).max() and np.abs(y).max() > 0:
            # An answer interpolates, relative to y's own scale.
            r = (X.astype("f8") / scale_x) @ (beta * scale_x / scale_y) - y.astype("f8") / scale_y
            assert np.abs(r).max() <= 1e-6 * max(1.0, np.abs(y / scale_y).max())


@PROPERTY
@given(x=arrays, y=arrays, w=st.one_of(st.none(), arrays))
def test_any_arrays_through_basis_pursuit(x, y, w):
    try:
        out = dlncheck.basis_pursuit(x, y, w)
    except ERRORS as e:
        assert str(e)
    else:
        assert np.isfinite(out["beta"]).all() and out["rel_gap"] <= 1e-9


# ---- issue 21: the family's starts and parametrisations ----------------------------------

starts = st.one_of(arrays, st.floats(allow_nan=True, allow_infinity=True), st.none())


@PROPERTY
@given(
    alpha=starts,
    u0=starts,
    v0=starts,
    b0=starts,
    param=st.sampled_from(["uv", "u2v2", "md", "UV", "", "depth:3", "<b>md</b>"]),
    d=st.one_of(st.none(), st.integers(min_value=-2, max_value=6)),
)
def test_any_start_builds_or_raises_by_name(alpha, u0, v0, b0, param, d):
    kwargs = {k: v for k, v in dict(u0=u0, v0=v0, b0=b0).items() if v is not None}
    try:
        acc = dlncheck.GainAccumulator(alpha, d, param=param, **kwargs)
    except ERRORS as e:
        assert str(e)
        return
    assert acc.param == param and acc.steps == 0
    n = acc.gain.shape[0]
    raises_or_adds(acc, lambda: acc.add(0.01, np.full(n, 0.1)), 1)


@PROPERTY
@given(
    scale=st.sampled_from([1e-300, 1e-150, 1e-8, 1.0, 1e8, 1e150, 1e300]),
    param=st.sampled_from(["uv", "u2v2"]),
    grad=arrays,
    stepsize=st.floats(allow_nan=True, allow_infinity=True),
)
def test_starts_at_any_scale_and_any_step(scale, param, grad, stepsize):
    rng = np.random.default_rng(0)
    u0, v0 = scale * (1 + rng.random(4)), scale * (rng.random(4) - 0.5)
    try:
        acc = dlncheck.GainAccumulator(u0=u0, v0=v0, param=param)
    except ValueError as e:
        assert "1e150" in str(e) or "1e+150" in str(e)  # |w±,₀| above the limit, said so
        return
    raises_or_adds(acc, lambda: acc.add(stepsize, grad), 1)
    assert np.isfinite(acc.ln_alpha_inf2).all()


@PROPERTY
@given(grad=arrays, stepsize=st.floats(allow_nan=True, allow_infinity=True))
def test_mirror_descent_counts_steps_and_has_no_gain(grad, stepsize):
    acc = dlncheck.GainAccumulator(0.1, d=4, param="md", b0=np.array([0.0, 0.01, -0.02, 1.0]))
    raises_or_adds(acc, lambda: acc.add(stepsize, grad), 1)
    assert not acc.gain.any()


@PROPERTY
@given(u=st.one_of(st.none(), arrays), v=st.one_of(st.none(), arrays), beta=st.one_of(st.none(), arrays))
def test_any_weights_through_predict(u, v, beta):
    X, y = problem(n=3, d=4)
    acc = dlncheck.GainAccumulator(0.1, d=4)
    acc.add(0.05, np.full(4, 0.1))
    try:
        out = dlncheck.predict(X, y, acc, beta=beta, u=u, v=v)
    except ERRORS as e:
        assert str(e)
        return
    assert out["tol_used"] >= 1e-8 and np.isfinite(out["tol_used"])
    if beta is None or out["tol_used"] >= 1e-2:
        assert out["verdict"] is None  # nothing to compare, or no digit left to compare


@PROPERTY
@given(u=st.one_of(st.none(), arrays), v=st.one_of(st.none(), arrays), beta=arrays, readings=st.booleans())
def test_any_weights_through_diagnose(u, v, beta, readings):
    X, y = problem(n=3, d=4)
    acc = dlncheck.GainAccumulator(0.1, d=4, diagnose=readings)
    acc.add(0.05, np.full(4, 0.1))
    before = state(acc)
    try:
        out = dlncheck.diagnose(X, y, acc, beta, u=u, v=v)
    except ERRORS as e:
        assert str(e)
    else:
        assert out["best"]["message"] and out["tried"] and isinstance(out["explained"], bool)
        assert all(t["rel_err"] is None or np.isfinite(t["rel_err"]) for t in out["tried"])
    assert state(acc) == before  # diagnosing never changes the accumulator


@PROPERTY
@given(
    scale=st.sampled_from([1e-300, 1e-150, 1e-20, 1.0, 1e20, 1e150, 1e300]),
    param=st.sampled_from(["uv", "u2v2", "md"]),
    grad=arrays,
    stepsize=st.sampled_from([1e-300, 1e-3, 0.5, 1.0, 1e300]),
)
def test_readings_at_any_scale_keep_the_accumulator_exact(scale, param, grad, stepsize):
    # The readings (2×, ½×, lagged, heavy-ball replays) never change what the accumulator
    # itself computes, and never make a call raise that would not raise without them.
    try:
        plain = dlncheck.GainAccumulator(scale, d=4, param=param)
    except ValueError:
        with pytest.raises(ValueError):
            dlncheck.GainAccumulator(scale, d=4, param=param, diagnose=True)
        return
    full = dlncheck.GainAccumulator(scale, d=4, param=param, diagnose=True)
    outcomes = []
    for acc in (plain, full):
        try:
            acc.add(stepsize, grad)
            outcomes.append("added")
        except ERRORS as e:
            outcomes.append(type(e))
    assert outcomes[0] == outcomes[1]
    assert state(plain) == state(full)
    X, y = problem(n=3, d=4)
    try:
        out = dlncheck.diagnose(X, y, full, X[0] * 0 + 1.0)
    except ERRORS:
        return
    assert out["best"]["message"]


def _device_sums(grad, stepsize, scan):
    """Three steps through dlncheck.jax (gain_scan or gain_update), as a host accumulator."""
    jax = pytest.importorskip("jax", reason="jax is not installed (CI installs the CPU build)")
    jax.config.update("jax_enable_x64", True)
    import dlncheck.jax as dj

    if scan:
        (_, s), _ = dj.gain_scan(lambda c, _: (c, (stepsize, grad)), (0.0, dj.gain_init(4)), length=3)
    else:
        s = dj.gain_init(4)
        for _ in range(3):
            s = dj.gain_update(s, stepsize, grad)
    return dj.to_accumulator(s, 0.1, 4)


def _torch_sums(grad, stepsize):
    """Three steps through dlncheck.torch, as a host accumulator; a refused step leaves the
    device state as it was."""
    torch = pytest.importorskip("torch", reason="torch is not installed (not in CI: 2 GB)")
    import dlncheck.torch as dt

    acc = dt.GainAccumulator(0.1, d=4)
    for _ in range(3):
        before = (acc.steps, acc.gain.clone(), acc.rho.clone())
        try:
            acc.add(stepsize, torch.from_numpy(grad.copy()) if grad.dtype.kind == "f" and grad.dtype.isnative else grad)
        except ERRORS:
            assert acc.steps == before[0] and torch.equal(acc.gain, before[1]) and torch.equal(acc.rho, before[2])
            raise
    return acc.to_accumulator()


gradients = st.one_of(arrays, hnp.arrays(dtype=st.sampled_from(["<f8", ">f8", "<f4", "f2", "<i8", "u1"]), shape=4))


SCALES = st.sampled_from([1e-300, 1e-8, 1.0, 1e8, 1e300])


def same_as_host(grad, stepsize, scale, device_sums):
    """Three steps of `grad` × `scale` through the host accumulator and through
    `device_sums(grad, stepsize)`: both refused, or both taken with the same sums."""
    with np.errstate(all="ignore"):
        grad = grad * scale if grad.dtype.kind == "f" else grad
    host = dlncheck.GainAccumulator(0.1, d=4)
    try:
        for _ in range(3):
            host.add(stepsize, grad)
    except ERRORS:
        host = None
    try:
        device = device_sums(grad, stepsize)
    except ERRORS:
        device = None
    assert (device is not None) == (host is not None), (grad, stepsize)
    if device is not None:
        for a, b in ((device.gain, host.gain), (device.rho, host.rho)):
            assert np.max(np.abs(a - b)) <= 1e-13 * max(np.max(np.abs(b)), 1e-300)


@PROPERTY
@given(grad=gradients, stepsize=st.floats(allow_nan=True, allow_infinity=True), scan=st.booleans(), scale=SCALES)
def test_any_array_through_the_jax_accumulator(grad, stepsize, scan, scale):
    # The device accumulator takes what the host one takes, with the same sums, and refuses
    # the rest by a Python error (shape, dtype, stepsize, a degenerate step): never a
    # broadcast gradient or a silently wrong sum.
    same_as_host(grad, stepsize, scale, lambda g, s: _device_sums(g, s, scan))


@PROPERTY
@given(grad=gradients, stepsize=st.floats(allow_nan=True, allow_infinity=True), scale=SCALES)
def test_any_array_through_the_torch_accumulator(grad, stepsize, scale):
    same_as_host(grad, stepsize, scale, _torch_sums)

