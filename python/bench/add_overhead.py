"""Call overhead of GainAccumulator.add at d = 1,000, against numpy doing the same gain
update itself, and the peak memory of 10⁶ accumulated steps (it must not grow with K).

    pip install ./python && python python/bench/add_overhead.py
"""

import resource
import time

import numpy as np

import dlncheck

d, calls = 1_000, 200_000
rng = np.random.default_rng(0)
g = rng.standard_normal(d) * 1e-2
acc = dlncheck.GainAccumulator(0.1, d=d)

t = time.perf_counter()
for _ in range(calls):
    acc.add(0.1, g)
add_us = (time.perf_counter() - t) / calls * 1e6

gain, rho = np.zeros(d), np.zeros(d)
t = time.perf_counter()
for _ in range(calls // 10):
    x = 0.1 * g
    gain += -np.log1p(-x * x)
    rho += 2 * x - 2 * np.arctanh(x)
numpy_us = (time.perf_counter() - t) / (calls // 10) * 1e6

t = time.perf_counter()
for _ in range(calls):
    pass
loop_us = (time.perf_counter() - t) / calls * 1e6

rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
big = dlncheck.GainAccumulator(0.1, d=d)
G = rng.standard_normal((1000, d)) * 1e-2
steps = np.full(1000, 0.05)
t = time.perf_counter()
for _ in range(1000):  # 10⁶ steps, in blocks of 1,000 (add_many)
    big.add_many(steps, G)
many_s = time.perf_counter() - t
rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

print(f"acc.add, d = {d}: {add_us:.2f} µs per call (the empty Python loop: {loop_us:.2f} µs)")
print(f"numpy's own gain update, d = {d}: {numpy_us:.2f} µs per step")
print(f"10⁶ steps through add_many: {many_s:.2f} s, {big.steps} steps")
print(f"peak RSS: {rss_before:.1f} MB before, {rss_after:.1f} MB after 10⁶ steps")
