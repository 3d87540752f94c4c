//! Running an update rule over a parameter's elements: one pass, in chunks, on several cores
//! when the parameter is large enough to pay for it.

use rayon::prelude::*;
use tensor::Element;

/// Elements per chunk: large enough that scheduling costs nothing next to the arithmetic
/// (tens of microseconds of work), small enough to share a 400K-weight kernel among cores.
const CHUNK: usize = 32 * 1024;

/// One chunk of a parameter, its gradient and its state slices.
type Chunk<'a, T, const S: usize> = (&'a mut [T], &'a [T], [&'a mut [T]; S]);

/// Calls `f(w, g, states)` on matching chunks of the parameter `w`, its gradient `g` and its
/// `S` state slices, in parallel when there is more than one chunk. `f` is the whole rule
/// for a run of elements, written as a plain loop: it runs through [`tensor::simd::dispatch`],
/// so that it vectorizes for the processor's widest instruction set.
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
    let mut state_chunks = states.map(|s| s.chunks_mut(CHUNK));
    let chunks: Vec<Chunk<'_, T, S>> = w
        .chunks_mut(CHUNK)
        .zip(g.chunks(CHUNK))
        .map(|(w, g)| {
            let states = state_chunks
                .each_mut()
                .map(|it| it.next().expect("same length"));
            (w, g, states)
        })
        .collect();
    chunks
        .into_par_iter()
        .for_each(|(w, g, states)| f(w, g, states));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_element_is_visited_once_with_its_own_state() {
        let n = 3 * CHUNK + 17;
        let mut w: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let g: Vec<f64> = (0..n).map(|i| 2.0 * i as f64).collect();
        let mut s: Vec<f64> = vec![1.0; n];
        for_each_chunk(&mut w, &g, [&mut s], |w, g, [s]| {
            for ((w, g), s) in w.iter_mut().zip(g).zip(s.iter_mut()) {
                *w += g;
                *s += 1.0;
            }
        });
        assert!(w.iter().enumerate().all(|(i, &v)| v == 3.0 * i as f64));
        assert!(s.iter().all(|&v| v == 2.0));
    }
}
