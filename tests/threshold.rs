//! The measured threshold brackets the change of behaviour: the run at `lo` converges
//! within the budget, the run at `hi` does not, for GD and SGD.

use dlncheck::problem::ProblemSpec;
use dlncheck::threshold::{ThresholdSettings, threshold};
use dlncheck::train::{Batching, Stepsizes, Stop, TrainConfig, train};
use nalgebra::DVector;

#[test]
fn the_bracket_separates_converging_from_failing_runs() {
    let p = ProblemSpec { seed: 3, ..ProblemSpec::default() }.generate().unwrap();
    let alpha = DVector::from_element(p.d(), 0.1);
    let s = ThresholdSettings::default();
    for batch in [None, Some(1), Some(5)] {
        let t = threshold(&p, &alpha, batch, 7, &s).unwrap();
        assert!(t.lo < t.hi && t.hi / t.lo - 1.0 <= s.rel_width, "{t:?}");
        let run = |gamma: f64| {
            let batching = batch.map_or(Batching::Full, |m| Batching::Random { m, seed: 7 });
            let mut c = TrainConfig::new(alpha.clone(), Stepsizes::Constant(gamma), batching);
            c.tol = s.tol;
            c.max_iters = (s.time * p.n().div_ceil(batch.unwrap_or(p.n())) as f64 / gamma) as usize;
            train(&p, &c).unwrap().stop
        };
        assert_eq!(run(t.lo), Stop::Converged, "{batch:?}: {t:?}");
        assert_eq!(run(t.hi), t.hi_stop, "{batch:?}: {t:?}");
        assert_ne!(t.hi_stop, Stop::Converged);
        // Well beyond the threshold the iterates blow up.
        assert!(matches!(run(4.0 * t.hi), Stop::Diverged { .. }), "{batch:?}");
    }
}
