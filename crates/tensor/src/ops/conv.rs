//! The patches of a convolution (im2col) and their adjoint: a 2-D convolution of a
//! channels-last batch `[b, h, w, c]` is `patches(x) @ kernel`, one matrix product, and
//! [`fold_patches`](Tensor::fold_patches) sums patch gradients back into an image.

use crate::element::Element;
use crate::error::{Result, TensorError};
use crate::tensor::Tensor;

/// Keras's padding modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// No padding: windows stay inside the image.
    Valid,
    /// Zeros around the image so that the output has `ceil(size / stride)` positions along
    /// each axis; an odd total puts the extra row or column at the bottom or right, as
    /// TensorFlow and Keras do.
    Same,
}

/// The geometry of a 2-D window over a channels-last image: window size, strides,
/// dilation and the padding it implies for an image size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub size: [usize; 2],
    pub strides: [usize; 2],
    pub dilation: [usize; 2],
    pub padding: Padding,
}

/// How a 2-D convolution moves its kernel: Keras's `strides`, `padding` and
/// `dilation_rate` (defaults 1, `valid`, 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dOptions {
    pub strides: [usize; 2],
    pub padding: Padding,
    pub dilation: [usize; 2],
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Conv2dOptions {
            strides: [1, 1],
            padding: Padding::Valid,
            dilation: [1, 1],
        }
    }
}

impl Conv2dOptions {
    /// The window of a kernel of `size` moved this way.
    pub fn window(&self, size: [usize; 2]) -> Window {
        Window {
            size,
            strides: self.strides,
            dilation: self.dilation,
            padding: self.padding,
        }
    }
}

/// A [`Window`] placed on an image of a given height and width: the zeros added on each
/// side and the output size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Top, bottom, left, right.
    pub pad: [usize; 4],
    pub out: [usize; 2],
}

impl Window {
    /// A window of `size` with strides 1, no dilation and `valid` padding.
    pub fn new(size: [usize; 2]) -> Self {
        Window {
            size,
            strides: [1, 1],
            dilation: [1, 1],
            padding: Padding::Valid,
        }
    }

    /// Where this window goes on an image of `[h, w]`.
    ///
    /// ```
    /// use tensor::ops::conv::{Padding, Window};
    /// let w = Window { padding: Padding::Same, strides: [2, 2], ..Window::new([3, 3]) };
    /// let p = w.place([5, 4], "conv2d").unwrap();
    /// assert_eq!(p.out, [3, 2]);
    /// assert_eq!(p.pad, [1, 1, 0, 1]);
    /// ```
    ///
    /// # Errors
    /// If a size, stride or dilation is 0, or a `valid` window is larger than the image.
    pub fn place(&self, image: [usize; 2], op: &'static str) -> Result<Placement> {
        let invalid = |message: String| TensorError::InvalidArgument { op, message };
        if self.size.contains(&0) || self.strides.contains(&0) || self.dilation.contains(&0) {
            return Err(invalid(format!(
                "window size {:?}, strides {:?} and dilation {:?} must all be at least 1",
                self.size, self.strides, self.dilation
            )));
        }
        let mut pad = [0; 4];
        let mut out = [0; 2];
        for a in 0..2 {
            let span = (self.size[a] - 1) * self.dilation[a] + 1;
            let (n, s) = (image[a], self.strides[a]);
            match self.padding {
                Padding::Valid => {
                    if span > n {
                        return Err(invalid(format!(
                            "a window spanning {span} (size {:?}, dilation {:?}) does not fit \
                             an image of {image:?} with valid padding",
                            self.size, self.dilation
                        )));
                    }
                    out[a] = (n - span) / s + 1;
                }
                Padding::Same => {
                    out[a] = n.div_ceil(s);
                    let total = ((out[a].max(1) - 1) * s + span).saturating_sub(n);
                    pad[2 * a] = total / 2;
                    pad[2 * a + 1] = total - total / 2;
                }
            }
        }
        Ok(Placement { pad, out })
    }
}

/// The input `[b, h, w, c]` of a window op, checked.
fn image_dims(op: &'static str, shape: &[usize]) -> Result<[usize; 4]> {
    match *shape {
        [b, h, w, c] => Ok([b, h, w, c]),
        _ => Err(TensorError::RankMismatch {
            op,
            expected: "4 dimensions [batch, height, width, channels]".into(),
            shape: shape.to_vec(),
        }),
    }
}

/// Calls `f(patch_offset, image_offset)` for every (output position, window element) whose
/// image pixel is inside the image; offsets count elements, and each names `c` channels.
fn for_each_tap(
    [b, h, w, c]: [usize; 4],
    window: &Window,
    p: &Placement,
    mut f: impl FnMut(usize, usize),
) {
    let [kh, kw] = window.size;
    let [oh, ow] = p.out;
    let row = kh * kw * c;
    for n in 0..b {
        for oy in 0..oh {
            for ox in 0..ow {
                let base = ((n * oh + oy) * ow + ox) * row;
                for ky in 0..kh {
                    let iy = (oy * window.strides[0] + ky * window.dilation[0]) as isize
                        - p.pad[0] as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    for kx in 0..kw {
                        let ix = (ox * window.strides[1] + kx * window.dilation[1]) as isize
                            - p.pad[2] as isize;
                        if ix < 0 || ix >= w as isize {
                            continue;
                        }
                        let src = ((n * h + iy as usize) * w + ix as usize) * c;
                        f(base + (ky * kw + kx) * c, src);
                    }
                }
            }
        }
    }
}

impl<T: Element> Tensor<T> {
    /// The patches a convolution reads: for a channels-last batch `[b, h, w, c]`, a tensor
    /// `[b, oh, ow, kh * kw * c]` holding each output position's window (ordered `kh`, `kw`,
    /// `c`, as Keras's kernel `[kh, kw, c_in, c_out]` is), zero where the window reaches
    /// into padding. A convolution is then `patches @ kernel.reshape([kh * kw * c, c_out])`.
    ///
    /// ```
    /// use tensor::Tensor;
    /// use tensor::ops::conv::Window;
    /// // A 3x3 single-channel image, 2x2 windows: 4 positions of 4 pixels each.
    /// let x = Tensor::from_vec((1..=9).map(|v| v as f32).collect(), &[1, 3, 3, 1]).unwrap();
    /// let p = x.patches(&Window::new([2, 2])).unwrap();
    /// assert_eq!(p.shape(), &[1, 2, 2, 4]);
    /// assert_eq!(&p.to_vec()[..4], &[1.0, 2.0, 4.0, 5.0]);
    /// ```
    ///
    /// # Errors
    /// If the input is not 4-D or the window does not fit (see [`Window::place`]).
    pub fn patches(&self, window: &Window) -> Result<Tensor<T>> {
        let dims = image_dims("patches", self.shape())?;
        let p = window.place([dims[1], dims[2]], "patches")?;
        let c = dims[3];
        let rows = dims[0] * p.out[0] * p.out[1];
        let row = window.size[0] * window.size[1] * c;
        let x = self.to_contiguous();
        let x = x.as_slice().expect("contiguous");
        let mut out = vec![T::zero(); rows * row];
        for_each_tap(dims, window, &p, |dst, src| {
            out[dst..dst + c].copy_from_slice(&x[src..src + c]);
        });
        Tensor::from_vec(out, &[dims[0], p.out[0], p.out[1], row])
    }

    /// Max pooling: the largest element of each window, per channel, `[b, oh, ow, c]`, and
    /// for each the flat index of the input element chosen (the first of equal ones).
    /// Positions in padding never win, as in TensorFlow.
    ///
    /// ```
    /// use tensor::Tensor;
    /// use tensor::ops::conv::Window;
    /// let x = Tensor::from_vec((0..16).map(|v| v as f32).collect(), &[1, 4, 4, 1]).unwrap();
    /// let w = Window { strides: [2, 2], ..Window::new([2, 2]) };
    /// let (y, chosen) = x.max_pool(&w).unwrap();
    /// assert_eq!((y.to_vec(), chosen), (vec![5.0, 7.0, 13.0, 15.0], vec![5, 7, 13, 15]));
    /// ```
    ///
    /// # Errors
    /// If the input is not 4-D or the window does not fit (see [`Window::place`]).
    pub fn max_pool(&self, window: &Window) -> Result<(Tensor<T>, Vec<usize>)> {
        let dims = image_dims("max_pool2d", self.shape())?;
        let p = window.place([dims[1], dims[2]], "max_pool2d")?;
        let c = dims[3];
        let row = window.size[0] * window.size[1] * c;
        let x = self.to_contiguous();
        let x = x.as_slice().expect("contiguous");
        let n = dims[0] * p.out[0] * p.out[1] * c;
        let mut values = vec![T::neg_infinity(); n];
        let mut chosen = vec![usize::MAX; n];
        for_each_tap(dims, window, &p, |dst, src| {
            let out = dst / row * c;
            for ch in 0..c {
                let v = x[src + ch];
                if chosen[out + ch] == usize::MAX || v > values[out + ch] {
                    values[out + ch] = v;
                    chosen[out + ch] = src + ch;
                }
            }
        });
        Ok((
            Tensor::from_vec(values, &[dims[0], p.out[0], p.out[1], c])?,
            chosen,
        ))
    }

    /// The adjoint of [`patches`](Tensor::patches): for patch values (or their gradients)
    /// `[b, oh, ow, kh * kw * c]`, the image `image_shape = [b, h, w, c]` in which each pixel
    /// is the sum of the patch entries that read it.
    ///
    /// # Errors
    /// If `image_shape` is not 4-D, the window does not fit it, or `self`'s shape is not the
    /// patches' shape for that image.
    pub fn fold_patches(&self, window: &Window, image_shape: &[usize]) -> Result<Tensor<T>> {
        let dims = image_dims("fold_patches", image_shape)?;
        let p = window.place([dims[1], dims[2]], "fold_patches")?;
        let c = dims[3];
        let row = window.size[0] * window.size[1] * c;
        let expected = [dims[0], p.out[0], p.out[1], row];
        if self.shape() != expected {
            return Err(TensorError::ShapeMismatch {
                op: "fold_patches",
                lhs: self.shape().to_vec(),
                rhs: expected.to_vec(),
            });
        }
        let g = self.to_contiguous();
        let g = g.as_slice().expect("contiguous");
        let mut out = vec![T::zero(); dims.iter().product()];
        for_each_tap(dims, window, &p, |dst, src| {
            for (o, &v) in out[src..src + c].iter_mut().zip(&g[dst..dst + c]) {
                *o += v;
            }
        });
        Tensor::from_vec(out, image_shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A direct 2-D convolution (cross-correlation, as Keras's), for checking.
    fn naive_conv(x: &Tensor<f64>, k: &Tensor<f64>, window: &Window) -> Tensor<f64> {
        let [b, h, w, c] = image_dims("test", x.shape()).unwrap();
        let (kh, kw, o) = (k.shape()[0], k.shape()[1], k.shape()[3]);
        let p = window.place([h, w], "test").unwrap();
        let mut out = vec![0.0; b * p.out[0] * p.out[1] * o];
        for n in 0..b {
            for oy in 0..p.out[0] {
                for ox in 0..p.out[1] {
                    for f in 0..o {
                        let mut s = 0.0;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * window.strides[0] + ky * window.dilation[0])
                                    as isize
                                    - p.pad[0] as isize;
                                let ix = (ox * window.strides[1] + kx * window.dilation[1])
                                    as isize
                                    - p.pad[2] as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                for ch in 0..c {
                                    s += x.get(&[n, iy as usize, ix as usize, ch]).unwrap()
                                        * k.get(&[ky, kx, ch, f]).unwrap();
                                }
                            }
                        }
                        out[((n * p.out[0] + oy) * p.out[1] + ox) * o + f] = s;
                    }
                }
            }
        }
        Tensor::from_vec(out, &[b, p.out[0], p.out[1], o]).unwrap()
    }

    #[test]
    fn patches_times_the_kernel_is_the_convolution() {
        let mut rng = crate::random::seeded(3);
        for (padding, strides, dilation) in [
            (Padding::Valid, [1, 1], [1, 1]),
            (Padding::Same, [1, 1], [1, 1]),
            (Padding::Same, [2, 2], [1, 1]),
            (Padding::Valid, [2, 1], [1, 2]),
            (Padding::Same, [1, 3], [2, 1]),
        ] {
            let window = Window {
                size: [3, 2],
                strides,
                dilation,
                padding,
            };
            let x = Tensor::<f64>::rand_normal(&[2, 7, 6, 3], 0.0, 1.0, &mut rng);
            let k = Tensor::<f64>::rand_normal(&[3, 2, 3, 4], 0.0, 1.0, &mut rng);
            let p = x.patches(&window).unwrap();
            let [b, oh, ow, row] = [p.shape()[0], p.shape()[1], p.shape()[2], p.shape()[3]];
            let y = p
                .reshape(&[b * oh * ow, row])
                .matmul(&k.reshape(&[row, 4]))
                .reshape(&[b, oh, ow, 4]);
            let want = naive_conv(&x, &k, &window);
            assert!(y.allclose(&want, 1e-12, 1e-12), "{window:?}");
        }
    }

    #[test]
    fn same_padding_is_keras_s() {
        // Keras/TensorFlow: output ceil(n / s), extra padding at the bottom/right.
        let w = |k, s, d| Window {
            size: [k, k],
            strides: [s, s],
            dilation: [d, d],
            padding: Padding::Same,
        };
        assert_eq!(w(3, 1, 1).place([28, 28], "t").unwrap().pad, [1, 1, 1, 1]);
        assert_eq!(w(2, 1, 1).place([5, 5], "t").unwrap().pad, [0, 1, 0, 1]);
        assert_eq!(w(3, 2, 1).place([6, 6], "t").unwrap().pad, [0, 1, 0, 1]);
        assert_eq!(w(3, 2, 1).place([6, 6], "t").unwrap().out, [3, 3]);
        assert_eq!(w(3, 1, 2).place([10, 10], "t").unwrap().pad, [2, 2, 2, 2]);
    }

    #[test]
    fn fold_is_the_adjoint_of_patches() {
        // <patches(x), g> = <x, fold(g)> for any x and g.
        let mut rng = crate::random::seeded(4);
        let window = Window {
            size: [2, 3],
            strides: [2, 1],
            dilation: [1, 2],
            padding: Padding::Same,
        };
        let x = Tensor::<f64>::rand_normal(&[2, 5, 6, 2], 0.0, 1.0, &mut rng);
        let px = x.patches(&window).unwrap();
        let g = Tensor::<f64>::rand_normal(px.shape(), 0.0, 1.0, &mut rng);
        let fg = g.fold_patches(&window, x.shape()).unwrap();
        let lhs = (&px * &g).sum_all();
        let rhs = (&x * &fg).sum_all();
        assert!((lhs - rhs).abs() < 1e-10, "{lhs} against {rhs}");
    }

    #[test]
    fn bad_windows_and_shapes_are_errors() {
        let x = Tensor::<f32>::zeros(&[1, 4, 4, 1]);
        let e = x.patches(&Window::new([5, 2])).unwrap_err().to_string();
        assert!(e.contains("does not fit an image of [4, 4]"), "{e}");
        let e = x
            .patches(&Window {
                strides: [0, 1],
                ..Window::new([2, 2])
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("must all be at least 1"), "{e}");
        let e = Tensor::<f32>::zeros(&[4, 4, 1])
            .patches(&Window::new([2, 2]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("4 dimensions"), "{e}");
        let e = Tensor::<f32>::zeros(&[1, 3, 3, 3])
            .fold_patches(&Window::new([2, 2]), &[1, 4, 4, 1])
            .unwrap_err()
            .to_string();
        assert!(e.contains("[1, 3, 3, 4]"), "{e}");
    }
}
