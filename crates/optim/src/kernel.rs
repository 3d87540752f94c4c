//! Running an update rule over a parameter's elements: one pass, in halves on several cores
//! when the parameter is large enough to pay for it.

use tensor::Element;

/// Parameters of at most this many elements are updated on one thread: below it, handing
/// half to another core costs about as much as it saves.
const CHUNK: usize = 32 * 1024;

/// Calls `f(w, g, states)` on matching runs of the parameter `w`, its gradient `g` and its
/// `S` state slices: the whole of them for a small parameter, else halves in parallel. `f`
/// is the whole rule for a run of elements, written as a plain loop: it runs through
/// [`tensor::simd::dispatch`], so that it vectorizes for the processor's widest instruction
/// set.
pub(crate) fn for_each_chunk<T: Element, const S: usize>(
    w: &mut [T],
    g: &[T],
    states: [&mut [T]; S],
    f: impl Fn(&mut [T], &[T], [&mut [T]; S]) + Sync,
) {
    debug_assert!(states.iter().all(|s| s.len() == w.len()) && g.len() == w.len());
    let f = |w: &mut [T], g: &[T], states: [&mut [T]; S]| {
        tensor::simd::dispatch(
            #[inline(always)]
            || f(w, g, states),
        )
    };
    if w.len() <= CHUNK {
        f(w, g, states);
        return;
    }
    halves(w, g, states, tensor::parallel::splits(), &f);
}

/// `f` on the two halves of the runs, in parallel (the first on this thread), each halved
/// again `splits - 1` times while they are larger than [`CHUNK`]. The halves are the same at
/// every step and the calling thread takes the first, so a parameter's state is not moved
/// between cores from step to step (work stealing over small chunks moved it); a weight
/// gradient comes from a product split by rows the same way, the first half on the
/// calling thread.
fn halves<T: Element, const S: usize>(
    w: &mut [T],
    g: &[T],
    states: [&mut [T]; S],
    splits: usize,
    f: &(impl Fn(&mut [T], &[T], [&mut [T]; S]) + Sync),
) {
    if splits == 0 || w.len() <= CHUNK {
        f(w, g, states);
        return;
    }
    let mid = w.len().div_ceil(2).div_ceil(16) * 16;
    let (w1, w2) = w.split_at_mut(mid);
    let (g1, g2) = g.split_at(mid);
    let mut pairs = states.map(|s| s.split_at_mut(mid));
    let s1 = pairs.each_mut().map(|p| std::mem::take(&mut p.0));
    let s2 = pairs.map(|p| p.1);
    rayon::join(
        || halves(w1, g1, s1, splits - 1, f),
        || halves(w2, g2, s2, splits - 1, f),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_element_is_visited_once_with_its_own_state() {
        for threads in 1..=4 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for n in [17, CHUNK, CHUNK + 1, 3 * CHUNK + 17, 9 * CHUNK + 5] {
                let mut w: Vec<f64> = (0..n).map(|i| i as f64).collect();
                let g: Vec<f64> = (0..n).map(|i| 2.0 * i as f64).collect();
                let mut s: Vec<f64> = vec![1.0; n];
                let mut t: Vec<f64> = (0..n).map(|i| -(i as f64)).collect();
                pool.install(|| {
                    for_each_chunk(&mut w, &g, [&mut s, &mut t], |w, g, [s, t]| {
                        for (((w, g), s), t) in w.iter_mut().zip(g).zip(s.iter_mut()).zip(t) {
                            *w += g;
                            *s += 1.0;
                            *t += *w;
                        }
                    })
                });
                let what = format!("{threads} threads, {n} elements");
                assert!(
                    w.iter().enumerate().all(|(i, &v)| v == 3.0 * i as f64),
                    "{what}"
                );
                assert!(s.iter().all(|&v| v == 2.0), "{what}");
                assert!(
                    t.iter().enumerate().all(|(i, &v)| v == 2.0 * i as f64),
                    "{what}"
                );
            }
        }
    }

    #[test]
    fn the_calling_thread_takes_the_first_half_at_every_step() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let n = 4 * CHUNK;
        let mut w = vec![0.0f32; n];
        let g = vec![1.0f32; n];
        let start = w.as_ptr() as usize;
        for step in 0..20 {
            let (first, caller) = pool.install(|| {
                let first = std::sync::Mutex::new(Vec::new());
                for_each_chunk(&mut w, &g, [], |w, g, []| {
                    if w.as_ptr() as usize == start {
                        first.lock().unwrap().push(rayon::current_thread_index());
                    }
                    for (w, g) in w.iter_mut().zip(g) {
                        *w += g;
                    }
                });
                (first.into_inner().unwrap(), rayon::current_thread_index())
            });
            assert_eq!(first, vec![caller], "step {step}");
        }
        assert!(w.iter().all(|&v| v == 20.0));
    }
}
