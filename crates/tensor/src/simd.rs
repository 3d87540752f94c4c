//! Run-time choice of the instruction set for hot loops, so that one build (no
//! `-C target-cpu` flags) runs AVX-512 or AVX2 code where the processor has it.
//!
//! [`dispatch`] runs a closure inside a function compiled for the best instruction set the
//! processor supports. The closure is inlined there, so a plain loop written in it (an
//! optimizer rule, an activation) is vectorized for that instruction set: 16 `f32` lanes
//! with AVX-512 instead of the 4 of the x86-64 baseline.
//!
//! ```
//! let x = vec![1.0f32; 1000];
//! let mut y = vec![0.0f32; 1000];
//! tensor::simd::dispatch(#[inline(always)] || {
//!     for (y, x) in y.iter_mut().zip(&x) {
//!         *y = 2.0 * x.sqrt();
//!     }
//! });
//! assert!(y.iter().all(|&v| v == 2.0));
//! ```

/// The instruction sets [`dispatch`] chooses between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// The target's baseline (SSE2 on x86-64; everything on other architectures).
    Baseline,
    /// AVX2 with FMA (x86-64-v3).
    Avx2,
    /// AVX-512 F/VL/BW/DQ with AVX2 and FMA (x86-64-v4).
    Avx512,
}

/// The level [`dispatch`] uses: the best this processor supports, or lower if the
/// environment variable `BRICK_SIMD` (`baseline`, `avx2` or `avx512`) caps it. Detected once,
/// then cached.
pub fn level() -> Level {
    use std::sync::OnceLock;
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let best = detected();
        match std::env::var("BRICK_SIMD")
            .ok()
            .and_then(|v| parse_level(&v))
        {
            Some(cap) if (cap as u8) < (best as u8) => cap,
            _ => best,
        }
    })
}

fn parse_level(name: &str) -> Option<Level> {
    match name.trim().to_ascii_lowercase().as_str() {
        "baseline" | "none" | "scalar" => Some(Level::Baseline),
        "avx2" => Some(Level::Avx2),
        "avx512" => Some(Level::Avx512),
        _ => None,
    }
}

/// The best level this processor supports (detected once, then cached).
fn detected() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        use std::sync::OnceLock;
        static DETECTED: OnceLock<Level> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            let v3 = has!("avx2") && has!("fma");
            let v4 =
                v3 && has!("avx512f") && has!("avx512vl") && has!("avx512bw") && has!("avx512dq");
            if v4 {
                Level::Avx512
            } else if v3 {
                Level::Avx2
            } else {
                Level::Baseline
            }
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Level::Baseline
    }
}

/// Runs `f` compiled for the best instruction set this processor has (see [`level`]).
///
/// Write the loop inside `f`, and mark `f` `#[inline(always)]` as below: the loop gets the
/// wider instruction set only if `f` is inlined here, and the compiler declines to inline a
/// large closure on its own (it then runs at the baseline, scalar). Code that `f` calls
/// without inlining keeps the baseline too.
///
/// Results are bitwise the same at every level: the compiler neither fuses a multiply and
/// an add nor reorders a floating-point sum on its own, so only the vector width changes.
///
/// ```
/// let mut v = vec![2.0f32; 100];
/// tensor::simd::dispatch(#[inline(always)] || {
///     for x in v.iter_mut() {
///         *x = x.sqrt();
///     }
/// });
/// assert!(v.iter().all(|&x| x == 2.0f32.sqrt()));
/// ```
#[inline]
pub fn dispatch<R>(f: impl FnOnce() -> R) -> R {
    dispatch_at(level(), f)
}

/// [`dispatch`] at a given level, capped at what the processor supports (for tests that
/// compare the levels).
#[inline]
pub fn dispatch_at<R>(wanted: Level, f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        let best = detected();
        let rank = |l: Level| l as u8;
        let chosen = if rank(wanted) <= rank(best) {
            wanted
        } else {
            best
        };
        match chosen {
            // SAFETY: `chosen` is at most `detected()`, which is Avx512 only after
            // `is_x86_feature_detected!` confirmed avx2, fma, avx512f, avx512vl, avx512bw and
            // avx512dq on this processor, all the features `x86_64_v4` enables; calling a
            // `target_feature` function is sound exactly when the processor has them.
            Level::Avx512 => unsafe { x86_64_v4(f) },
            // SAFETY: as above, avx2 and fma were detected, the features `x86_64_v3` enables.
            Level::Avx2 => unsafe { x86_64_v3(f) },
            Level::Baseline => f(),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = wanted;
        f()
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
#[inline]
unsafe fn x86_64_v4<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn x86_64_v3<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loop with a division, a square root and multiply-adds, at every level this
    /// processor supports; this is what runs the `unsafe` calls above.
    #[test]
    fn every_level_computes_the_same_loop() {
        let n = 1037; // not a multiple of any vector width
        let g: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        let run = |l: Level| {
            let mut w = vec![1.0f32; n];
            let mut v = vec![0.5f32; n];
            dispatch_at(
                l,
                #[inline(always)]
                || {
                    for ((w, v), &g) in w.iter_mut().zip(v.iter_mut()).zip(&g) {
                        *v = 0.9 * *v + 0.1 * (g * g);
                        *w -= 0.01 * g / (*v + 1e-7).sqrt();
                    }
                },
            );
            (w, v)
        };
        let base = run(Level::Baseline);
        for l in [Level::Avx2, Level::Avx512] {
            let (w, v) = run(l);
            // Bitwise: only the vector width differs between levels.
            assert_eq!(w, base.0, "{l:?}");
            assert_eq!(v, base.1, "{l:?}");
        }
    }

    #[test]
    fn the_detected_level_is_what_the_processor_reports() {
        #[cfg(target_arch = "x86_64")]
        {
            let v4 = std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw");
            assert_eq!(detected() == Level::Avx512, v4);
        }
        assert!((level() as u8) <= (detected() as u8));
        assert_eq!(dispatch(|| 6 * 7), 42);
    }

    #[test]
    fn level_names_parse() {
        assert_eq!(parse_level("AVX512"), Some(Level::Avx512));
        assert_eq!(parse_level(" avx2"), Some(Level::Avx2));
        assert_eq!(parse_level("baseline"), Some(Level::Baseline));
        assert_eq!(parse_level("sse9"), None);
    }
}
