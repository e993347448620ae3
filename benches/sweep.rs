//! Speed of the default sweep (issue 6): 20 × 30, s = 3, α = 0.1, GD and SGD, 30
//! fractions of the threshold (60 cells), on 1 and 2 threads. Thresholds are cached for
//! the process, so after the first iteration this times the cells alone; the command
//! `dlncheck sweep --out s.jsonl [--threads 1]` times a cold run, thresholds included.

use criterion::{Criterion, criterion_group, criterion_main};
use dlncheck::sweep::{Grid, run_sweep};

fn sweep(c: &mut Criterion) {
    let mut g = c.benchmark_group("sweep");
    g.sample_size(10);
    let grid = Grid::default_paper();
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        g.bench_function(format!("default sweep, {threads} thread(s)"), |b| {
            b.iter(|| {
                let dir = tempfile::tempdir().unwrap();
                pool.install(|| run_sweep(&grid, &dir.path().join("s.jsonl"), false, None, false).unwrap())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, sweep);
criterion_main!(benches);
