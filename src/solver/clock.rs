//! The clock the planner's and the disruption engine's limits read: the wall clock, or, inside
//! `with_work_clock`, a work clock that advances one fixed step at every reading. Under the work
//! clock a limit counts the checks the search makes instead of seconds, so the same input gives
//! the same plan on any machine and under any load (the simulator runs under it). Each thread
//! has its own clock.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How far the work clock advances at each reading.
pub const WORK_STEP: Duration = Duration::from_micros(20);

thread_local! {
    /// The work clock of this thread, when one is running: its origin and the readings so far.
    static WORK: Cell<Option<(Instant, u32)>> = const { Cell::new(None) };
}

/// The current instant: the wall clock, or the work clock inside `with_work_clock`.
pub fn now() -> Instant {
    WORK.with(|work| match work.get() {
        None => Instant::now(),
        Some((origin, readings)) => {
            work.set(Some((origin, readings.saturating_add(1))));
            origin + WORK_STEP * readings
        }
    })
}

/// True inside `with_work_clock` on this thread.
pub fn counts_work() -> bool {
    WORK.with(|work| work.get().is_some())
}

/// Run `f` with this thread's limits counting work instead of time.
pub fn with_work_clock<R>(f: impl FnOnce() -> R) -> R {
    /// Puts back the clock that ran before, also when `f` panics.
    struct Restore(Option<(Instant, u32)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            WORK.with(|work| work.set(self.0));
        }
    }
    let _restore = Restore(WORK.with(|work| work.replace(Some((Instant::now(), 0)))));
    f()
}

/// Run `f` on each of `inputs` side by side, one thread each, every thread on this thread's
/// clock as it reads now (a work clock goes on from this reading in each thread, the wall clock
/// stays the wall clock); afterwards this thread's work clock stands at the reading of the
/// thread that read it most. Results come back in the order of `inputs`, so under a work clock
/// the outcome does not depend on the machine.
pub fn side_by_side<T: Send, R: Send>(inputs: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let carried = carry();
    let f = &f;
    let results: Vec<(R, Carried)> = std::thread::scope(|scope| {
        let handles: Vec<_> = inputs
            .into_iter()
            .map(|input| scope.spawn(move || carried.run(|| f(input))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    let clocks: Vec<Carried> = results.iter().map(|(_, c)| *c).collect();
    catch_up(&clocks);
    results.into_iter().map(|(r, _)| r).collect()
}

/// A thread's clock as it read at one moment, to be carried into another thread.
#[derive(Debug, Clone, Copy)]
struct Carried(Option<(Instant, u32)>);

/// This thread's clock as it reads now.
fn carry() -> Carried {
    Carried(WORK.with(|work| work.get()))
}

impl Carried {
    /// Run `f` on this thread with the carried clock; returns `f`'s result and the clock after it.
    fn run<R>(self, f: impl FnOnce() -> R) -> (R, Carried) {
        /// Puts back the clock that ran before, also when `f` panics.
        struct Restore(Option<(Instant, u32)>);
        impl Drop for Restore {
            fn drop(&mut self) {
                WORK.with(|work| work.set(self.0));
            }
        }
        let _restore = Restore(WORK.with(|work| work.replace(self.0)));
        let out = f();
        (out, carry())
    }
}

/// Move this thread's work clock on to the furthest of `others` (threads that ran side by side
/// from this thread's clock end at the reading of the one that read it most).
fn catch_up(others: &[Carried]) {
    WORK.with(|work| {
        if let Some((origin, readings)) = work.get() {
            let furthest = others
                .iter()
                .filter_map(|c| c.0.map(|(_, r)| r))
                .fold(readings, u32::max);
            work.set(Some((origin, furthest)));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_work_clock_advances_one_step_per_reading() {
        let (a, b, inside) = with_work_clock(|| (now(), now(), counts_work()));
        assert_eq!(b - a, WORK_STEP);
        assert!(inside);
        assert!(!counts_work());
    }

    #[test]
    fn side_by_side_threads_go_on_from_the_work_clock_and_the_caller_catches_up() {
        with_work_clock(|| {
            let before = now();
            let inside = side_by_side(vec![1, 2], |n| (0..n).map(|_| now()).collect::<Vec<_>>());
            assert_eq!(inside[0], vec![before + WORK_STEP]);
            assert_eq!(inside[1], vec![before + WORK_STEP, before + 2 * WORK_STEP]);
            assert_eq!(now() - before, 3 * WORK_STEP);
        });
    }

    #[test]
    fn a_nested_work_clock_restores_the_outer_one() {
        with_work_clock(|| {
            let before = now();
            with_work_clock(now);
            assert_eq!(now() - before, WORK_STEP);
        });
    }
}
