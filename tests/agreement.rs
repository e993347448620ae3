//! Theorem 1 end to end: observed limits of converged runs equal the theory's
//! prediction to 1e-10 (DESIGN.md), for every built-in scenario, for an external
//! trajectory written by numpy, and for a replayed schedule.

mod common;

use common::fixture;
use common::suite::{self, REL_TOL};
use dlncheck::npz::NpzReader;
use dlncheck::predict::predict;
use dlncheck::problem::Problem;
use dlncheck::runfile::RunRecord;
use dlncheck::solve::NewtonSettings;
use dlncheck::train::{Stop, TrainConfig, load_schedule, train};
use dlncheck::trajectory::ExternalTrajectory;

fn scenario(name: &str) {
    let s = suite::builtin().into_iter().find(|s| s.name == name).expect("scenario exists");
    let o = s.run().expect("scenario runs");
    assert_eq!(o.stop, Stop::Converged, "{name}: {o:?}");
    assert!(o.loss < 1e-25);
    assert!(o.checks.rel_err <= REL_TOL, "{name}: rel_err {:e}", o.checks.rel_err);
    let kkt = o.checks.kkt_residual.expect("no underflow at these scales");
    assert!(kkt <= REL_TOL, "{name}: KKT {kkt:e}");
    assert!(o.checks.primal_residual <= 1e-11, "{name}: primal {:e}", o.checks.primal_residual);
    assert!(o.conservation_residual <= REL_TOL, "{name}: conservation {:e}", o.conservation_residual);
    // The theory must say more than gradient flow does: the gain moves the limit.
    assert!(o.checks.rel_err_gradient_flow > 1e3 * o.checks.rel_err, "{name}: {o:?}");
}

#[test]
fn gd_centred() {
    scenario("gd-centred");
}

#[test]
fn gd_large_gain_above_50() {
    scenario("gd-large-gain");
    let s = suite::builtin().into_iter().find(|s| s.name == "gd-large-gain").unwrap();
    assert!(s.run().unwrap().gain_max > 50.0);
}

#[test]
fn gd_uncentred() {
    scenario("gd-uncentred");
}

#[test]
fn gd_alpha_per_coordinate() {
    scenario("gd-alpha-per-coordinate");
}

#[test]
fn sgd_batch1() {
    scenario("sgd-batch1");
}

#[test]
fn sgd_batch2() {
    scenario("sgd-batch2");
}

#[test]
fn sgd_batch_n() {
    scenario("sgd-batch-n");
}

#[test]
fn sgd_uncentred() {
    scenario("sgd-uncentred");
}

#[test]
fn sgd_two_phase() {
    scenario("sgd-two-phase");
}

/// Trajectories recorded by plain numpy (tests/fixtures/make_fixtures.py): the gain we
/// accumulate equals numpy's -log1p(-x²) sum, and the prediction equals numpy's limit.
#[test]
fn external_trajectories_written_by_numpy() {
    let problem = Problem::load(&fixture("problem_plain.npz")).unwrap();
    for name in ["trajectory_gd.npz", "trajectory_sgd.npz"] {
        let path = fixture(name);
        let t = ExternalTrajectory::load(&path, None).unwrap();
        let eff = t.effective_init().unwrap();
        let mut f = NpzReader::open(&path).unwrap();
        let (gain_np, rho_np) = (f.vector("gain_numpy", None).unwrap(), f.vector("rho_numpy", None).unwrap());
        assert!((&eff.gain - &gain_np).amax() <= 1e-13 * gain_np.amax(), "{name}: gain");
        assert!((&eff.rho - &rho_np).amax() <= 1e-13 * rho_np.amax().max(1e-3), "{name}: rho");
        let beta = t.beta.as_ref().unwrap();
        assert!(problem.loss(beta) < 1e-25, "{name}: the numpy run converged");
        let pred = predict(&problem.x, &problem.y, &eff, Some(beta), &NewtonSettings::default()).unwrap();
        let c = pred.checks.unwrap();
        assert!(c.rel_err <= REL_TOL, "{name}: rel_err {:e}", c.rel_err);
        assert!(c.kkt_residual.unwrap() <= REL_TOL, "{name}: KKT {:?}", c.kkt_residual);
    }
}

/// Replaying numpy's stepsizes and batches reproduces numpy's run and the theory.
#[test]
fn replayed_schedule_matches_numpy_and_theory() {
    let problem = Problem::load(&fixture("problem_fortran.npz")).unwrap();
    let (stepsizes, batching) = load_schedule(&fixture("schedule_sgd.npz"), problem.n()).unwrap();
    let mut config = TrainConfig::new(nalgebra::DVector::from_element(problem.d(), 0.5), stepsizes, batching);
    config.tol = 0.0;
    let run = train(&problem, &config).unwrap();
    assert_eq!(run.iters, 6000);
    let numpy = ExternalTrajectory::load(&fixture("trajectory_sgd.npz"), None).unwrap();
    let numpy_beta = numpy.beta.unwrap();
    let ours = run.beta();
    assert!((&ours - &numpy_beta).amax() <= 1e-12 * numpy_beta.amax(), "same iterates as numpy");
    let rec = RunRecord::from_run(&run);
    let pred = predict(&problem.x, &problem.y, &rec.effective_init(), Some(&ours), &NewtonSettings::default()).unwrap();
    assert!(pred.checks.unwrap().rel_err <= REL_TOL);
}
