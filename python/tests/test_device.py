"""The on-device accumulators (issue 23, item 3) against the Rust one: the same steps give
the same Gain and Σ(q₋ − q₊) to ≤ 1e-13 relative to the largest entry (a coordinate of
Σ(q₋ − q₊) can be a small difference of large increments), in every branch (series below 1/4,
logarithms above, |x| > 1), for every parametrisation; a degenerate step is flagged.
The shared formula is checked through numpy as well, so it is held even where neither
framework is installed (torch is not installed in CI: 2 GB)."""

import numpy as np
import pytest

import dlncheck
from dlncheck import _device

RNG = np.random.default_rng(0)
D = 40
# Stepsizes × gradients spanning every branch: |x| from 1e-12 to 3.
STEPS = [(gamma, RNG.standard_normal(D) * scale) for gamma in (0.01, 0.3) for scale in (1e-10, 1e-3, 0.05, 0.4, 3.0)]


def rust(param="uv"):
    acc = dlncheck.GainAccumulator(0.1, d=D, param=param)
    for gamma, g in STEPS:
        acc.add(gamma, g)
    return acc


def close(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.max(np.abs(a - b)) <= 1e-13 * np.max(np.abs(b))


def test_the_shared_formula_is_the_rust_accumulators():
    gain, rho = np.zeros(D), np.zeros(D)
    with np.errstate(all="ignore"):  # the unselected side of each `where`
        for gamma, g in STEPS:
            dq, dr, bad = _device.increments(np, gamma * g)
            assert not bad.any()
            gain, rho = gain + dq, rho + dr
    acc = rust()  # its ρ is Σ(q₋ − q₊): the default start has w₊,₀ = w₋,₀
    assert close(gain, acc.gain) and close(rho, acc.rho)


def test_a_degenerate_step_is_flagged():
    with np.errstate(all="ignore"):
        _, _, bad = _device.increments(np, np.array([0.5, 1.0, -1.0, np.inf, np.nan]))
    assert bad.tolist() == [False, True, True, True, True]


@pytest.mark.parametrize("param", ["uv", "u2v2", "md"])
def test_jax_equals_the_rust_accumulator(param):
    jax = pytest.importorskip("jax", reason="jax is not installed (CI installs the CPU build)")
    jax.config.update("jax_enable_x64", True)
    import dlncheck.jax as dj

    update = jax.jit(lambda s, gamma, g: dj.gain_update(s, gamma, g, param))
    state = dj.gain_init(D)
    for gamma, g in STEPS:
        state = update(state, gamma, g)
    acc = dj.to_accumulator(state, 0.1, D, param=param)
    ref = rust(param)
    assert acc.steps == ref.steps == len(STEPS)
    assert close(acc.gain, ref.gain) and close(acc.rho, ref.rho)


def test_jax_inside_scan_and_degenerate_steps():
    jax = pytest.importorskip("jax", reason="jax is not installed (CI installs the CPU build)")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import dlncheck.jax as dj

    gammas = jnp.array([s[0] for s in STEPS])
    grads = jnp.stack([s[1] for s in STEPS])
    state, _ = jax.lax.scan(lambda s, step: (dj.gain_update(s, step[0], step[1]), None), dj.gain_init(D), (gammas, grads))
    assert close(state.gain, rust().gain)
    bad = dj.gain_update(dj.gain_init(D), 1.0, jnp.ones(D))
    with pytest.raises(ValueError, match="exactly 0"):
        dj.to_accumulator(bad, 0.1, D)


def test_torch_equals_the_rust_accumulator():
    torch = pytest.importorskip("torch", reason="torch is not installed (CI does not install it: 2 GB)")
    import dlncheck.torch as dt

    for param in ("uv", "u2v2", "md"):
        acc = dt.GainAccumulator(0.1, d=D, param=param)
        for gamma, g in STEPS:
            acc.add(gamma, torch.from_numpy(g))
        host, ref = acc.to_accumulator(), rust(param)
        assert host.steps == ref.steps and close(host.gain, ref.gain) and close(host.rho, ref.rho)


def test_from_sums_checks_what_it_is_given():
    with pytest.raises(ValueError, match="gain has 3 entries"):
        dlncheck.GainAccumulator.from_sums(np.zeros(3), np.zeros(D), 1, 0.1, D)
    with pytest.raises(ValueError, match="not finite|nan"):
        dlncheck.GainAccumulator.from_sums(np.full(D, np.nan), np.zeros(D), 1, 0.1, D)
    ref = rust()
    acc = dlncheck.GainAccumulator.from_sums(ref.gain, ref.rho, ref.steps, 0.1, D)
    assert np.array_equal(acc.alpha_inf, ref.alpha_inf) and acc.steps == ref.steps


def test_a_torch_gd_loop_is_predicted_from_its_device_accumulator():
    """The README's torch pattern end to end: GD on b = u ⊙ v in float64 tensors, the
    gain accumulated on the device, the limit predicted from it (agrees to ≤ 1e-8)."""
    torch = pytest.importorskip("torch", reason="torch is not installed (CI does not install it: 2 GB)")
    import dlncheck.torch as dt

    p = dlncheck.gen(20, 30, 3, seed=0)
    X, y = torch.from_numpy(p["X"]), torch.from_numpy(p["y"])
    alpha, gamma = 0.1, 0.3
    u = torch.full((30,), np.sqrt(2) * alpha, dtype=torch.float64)
    v = torch.zeros(30, dtype=torch.float64)
    acc = dt.GainAccumulator(alpha, d=30)
    for _ in range(200_000):
        g = X.T @ (X @ (u * v) - y) / 20
        acc.add(gamma, g)
        u, v = u - gamma * g * v, v - gamma * g * u
        if acc.steps % 100 == 0 and torch.sum((X @ (u * v) - y) ** 2) / 40 < 1e-26:
            break
    out = dlncheck.predict(p["X"], p["y"], acc.to_accumulator(), beta=(u * v).numpy())
    assert out["verdict"] == "agrees" and out["rel_err"] <= 1e-8, out


def _gd_block(jnp, n, d, gamma, seed, extra=False):
    """A GD step on b = u ⊙ v for gain_scan, and its start."""
    rng = np.random.default_rng(seed)
    X = jnp.asarray(rng.standard_normal((n, d)))
    y = X[:, :3] @ jnp.array([1.5, -2.0, 1.0])

    def step(carry, _):
        u, v = carry
        g = X.T @ (X @ (u * v) - y) / n
        out = (gamma, g, g) if extra else (gamma, g)
        return (u - gamma * g * v, v - gamma * g * u), out

    return step, (jnp.full(d, np.sqrt(2) * 0.1), jnp.zeros(d))


@pytest.mark.parametrize("gamma, redo", [(0.02, False), (0.6, True)])
def test_gain_scan_equals_the_rust_accumulator_on_both_paths(gamma, redo):
    # γ = 0.02 keeps every |x| below 1/16 (the series-only run stands); γ = 0.6 has larger
    # first steps, so the block is run again with gain_update's branches.
    jax = pytest.importorskip("jax", reason="jax is not installed (CI installs the CPU build)")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import dlncheck.jax as dj

    step, start = _gd_block(jnp, 20, 30, gamma, seed=1, extra=True)
    scan = jax.jit(lambda c: dj.gain_scan(step, c, length=300))
    (carry, state), grads = scan((start, dj.gain_init(30)))
    # The gradients the device used (the scan's outputs) through the Rust accumulator.
    grads = np.asarray(grads)
    acc = dlncheck.GainAccumulator(0.1, d=30)
    acc.add_many(np.full(300, gamma), grads)
    assert (np.max(np.abs(gamma * grads)) >= 1 / 16) == redo
    assert int(state.steps) == 300 and grads.shape == (300, 30)
    host = dj.to_accumulator(state, 0.1, 30)
    assert close(host.gain, acc.gain) and close(host.rho, acc.rho)
    # And the same sums as gain_update in the step.
    (_, per_step), _ = jax.lax.scan(lambda cs, _: (lambda c, o: ((c, dj.gain_update(cs[1], o[0], o[1])), None))(
        *step(cs[0], None)), (start, dj.gain_init(30)), None, length=300)
    assert close(state.gain, per_step.gain) and close(state.rho, per_step.rho)


def test_gain_scan_flags_degenerate_steps_and_counts_md():
    jax = pytest.importorskip("jax", reason="jax is not installed (CI installs the CPU build)")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import dlncheck.jax as dj

    # x = γg = 1 on every coordinate at the third step: the factor 1 − x is 0.
    grads = jnp.stack([jnp.full(D, 0.01), jnp.full(D, 0.02), jnp.ones(D), jnp.full(D, np.nan)])
    (_, state), _ = dj.gain_scan(lambda c, g: (c, (1.0, g)), (0.0, dj.gain_init(D)), grads[:3])
    with pytest.raises(ValueError, match="exactly 0"):
        dj.to_accumulator(state, 0.1, D)
    (_, state), _ = dj.gain_scan(lambda c, g: (c, (1.0, g)), (0.0, dj.gain_init(D)), grads[3:])
    assert bool(state.degenerate)
    (_, state), _ = dj.gain_scan(lambda c, g: (c, (0.1, g)), (0.0, dj.gain_init(D)), grads[:2], param="md")
    assert int(state.steps) == 2 and not np.any(np.asarray(state.gain))
    # b = u² − v²: x = 2γg, as the Rust accumulator takes it.
    (_, state), _ = dj.gain_scan(lambda c, g: (c, (0.1, g)), (0.0, dj.gain_init(D)), grads[:2], param="u2v2")
    ref = dlncheck.GainAccumulator(0.1, d=D, param="u2v2")
    for g in grads[:2]:
        ref.add(0.1, np.asarray(g))
    assert close(dj.to_accumulator(state, 0.1, D, param="u2v2").gain, ref.gain)
