//! `summary()` (Keras's table of layers, output shapes and parameter counts) and `to_dot()`
//! (a Graphviz drawing of the layers with their shapes, as `keras.utils.model_to_dot`).

use tensor::Element;

use crate::layers::shape_text;
use crate::model::Sequential;

/// Keras's default summary width (its width in a terminal of 92 columns or more).
pub const SUMMARY_WIDTH: usize = 88;

impl<T: Element> Sequential<T> {
    /// Keras's summary table, 88 characters wide:
    ///
    /// ```text
    /// Model: "sequential"
    /// ┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┓
    /// ┃ Layer (type)                         ┃ Output Shape                ┃         Param # ┃
    /// ┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━┩
    /// │ dense (Dense)                        │ (None, 8)                   │              40 │
    /// └──────────────────────────────────────┴─────────────────────────────┴─────────────────┘
    ///  Total params: 40 (160.00 B)
    ///  Trainable params: 40 (160.00 B)
    ///  Non-trainable params: 0 (0.00 B)
    /// ```
    ///
    /// Once the optimizer has state, a line `Optimizer params` is added and counted in the
    /// total, as Keras does.
    pub fn summary(&self) -> String {
        self.summary_with_width(SUMMARY_WIDTH)
    }

    /// [`summary`](Sequential::summary) at another width (Keras's `line_length`).
    pub fn summary_with_width(&self, line_length: usize) -> String {
        let widths = column_widths(line_length.max(30));
        let mut out = format!("Model: \"{}\"\n", self.name());
        out.push_str(&border(&widths, '┏', '━', '┳', '┓'));
        out.push_str(&row(
            &widths,
            ["Layer (type)", "Output Shape", "Param #"],
            '┃',
        ));
        out.push_str(&border(&widths, '┡', '━', '╇', '┩'));
        let mut input = self.input_shape().map(<[usize]>::to_vec);
        for (i, layer) in self.layers().iter().enumerate() {
            if i > 0 {
                out.push_str(&border(&widths, '├', '─', '┼', '┤'));
            }
            let name = format!("{} ({})", layer.name().unwrap_or("?"), layer.class_name());
            let output = input.as_deref().and_then(|s| layer.output_shape(s).ok());
            let (shape, params) = match &output {
                Some(s) if layer.is_built() => (shape_text(s), thousands(layer.count_params())),
                _ => ("?".to_string(), "0 (unbuilt)".to_string()),
            };
            input = output;
            out.push_str(&row(&widths, [&name, &shape, &params], '│'));
        }
        out.push_str(&border(&widths, '└', '─', '┴', '┘'));
        let bytes = std::mem::size_of::<T>();
        let trainable = self.count_trainable_params();
        let non_trainable = self.count_params() - trainable;
        let optimizer = self
            .optimizer()
            .filter(|o| o.common().is_built())
            // Keras also counts the iteration counter and the learning rate.
            .map(|o| o.state().iter().map(|t| t.len()).sum::<usize>() + 2);
        let total = trainable + non_trainable + optimizer.unwrap_or(0);
        let line = |label: &str, n: usize| {
            format!(
                " {label}: {} ({})\n",
                thousands(n),
                readable_size(n * bytes)
            )
        };
        out.push_str(&line("Total params", total));
        out.push_str(&line("Trainable params", trainable));
        out.push_str(&line("Non-trainable params", non_trainable));
        if let Some(n) = optimizer {
            out.push_str(&line("Optimizer params", n));
        }
        out
    }

    /// A Graphviz (DOT) drawing of the layers, each with its input and output shape, as
    /// `keras.utils.model_to_dot(model, show_shapes=True)` draws a Sequential model. Render it
    /// with `dot -Tpng`.
    ///
    /// ```
    /// use nn::{Dense, Sequential};
    /// let mut model = Sequential::<f32>::with_seed(0);
    /// model.add(Dense::new(8).input_dim(4).activation("relu")).unwrap();
    /// model.add(Dense::new(1).activation("sigmoid")).unwrap();
    /// let dot = model.to_dot();
    /// assert!(dot.starts_with("digraph G {"));
    /// assert!(dot.contains("\"dense\" -> \"dense_1\" [penwidth=2];"));
    /// ```
    pub fn to_dot(&self) -> String {
        let mut out = String::from(
            "digraph G {\nrankdir=TB;\nconcentrate=true;\ndpi=200;\nsplines=ortho;\nnode [shape=record];\n",
        );
        let shape = |d: &Option<Vec<usize>>| d.as_deref().map_or("?".to_string(), shape_text);
        let mut input = self.input_shape().map(<[usize]>::to_vec);
        for layer in self.layers() {
            let output = input.as_deref().and_then(|s| layer.output_shape(s).ok());
            let name = layer.name().unwrap_or("?");
            out.push_str(&format!(
                "\"{name}\" [label=<<table border=\"0\" cellborder=\"1\" bgcolor=\"black\" cellpadding=\"10\">\
                 <tr><td colspan=\"2\" bgcolor=\"black\"><font point-size=\"16\" color=\"white\"><b>{name}</b> ({})</font></td></tr>\
                 <tr><td bgcolor=\"white\"><font point-size=\"14\">Input shape: <b>{}</b></font></td>\
                 <td bgcolor=\"white\"><font point-size=\"14\">Output shape: <b>{}</b></font></td></tr></table>>, \
                 fontname=Helvetica, border=0, margin=0];\n",
                layer.class_name(),
                shape(&input),
                shape(&output)
            ));
            input = output;
        }
        for pair in self.layers().windows(2) {
            out.push_str(&format!(
                "\"{}\" -> \"{}\" [penwidth=2];\n",
                pair[0].name().unwrap_or("?"),
                pair[1].name().unwrap_or("?")
            ));
        }
        out.push_str("}\n");
        out
    }
}

/// Cell widths (between the bars, padding included) of the three columns for a table
/// `line_length` wide: Keras's column positions (0.45, 0.80, 1.0), two characters of padding
/// per cell, then the excess removed evenly column by column, as rich does.
fn column_widths(line_length: usize) -> [usize; 3] {
    let positions = [0.45, 0.80, 1.0];
    let mut cells = [0usize; 3];
    let mut previous = 0;
    for (i, p) in positions.iter().enumerate() {
        let edge = (p * line_length as f64) as usize;
        cells[i] = edge - previous + 2;
        previous = edge;
    }
    let mut excess = cells.iter().sum::<usize>() as f64 - (line_length - 4) as f64;
    let mut ratio_left = 3.0;
    for cell in &mut cells {
        let cut = round_half_even(excess / ratio_left).min(*cell as f64);
        *cell -= cut as usize;
        excess -= cut;
        ratio_left -= 1.0;
    }
    cells
}

fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    }
}

fn border(widths: &[usize; 3], left: char, fill: char, mid: char, right: char) -> String {
    let parts: Vec<String> = widths.iter().map(|&w| fill.to_string().repeat(w)).collect();
    format!("{left}{}{right}\n", parts.join(&mid.to_string()))
}

/// One table row; long texts wrap onto further lines within their cell. The last column
/// is right-aligned.
fn row(widths: &[usize; 3], cells: [&str; 3], bar: char) -> String {
    let wrapped: Vec<Vec<String>> = cells
        .iter()
        .zip(widths)
        .map(|(text, &w)| {
            let chars: Vec<char> = text.chars().collect();
            chars
                .chunks((w - 2).max(1))
                .map(|c| c.iter().collect())
                .collect()
        })
        .collect();
    let lines = wrapped.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let mut out = String::new();
    for l in 0..lines {
        out.push(bar);
        for (i, (col, &w)) in wrapped.iter().zip(widths).enumerate() {
            let text = col.get(l).map(String::as_str).unwrap_or("");
            let inner = w - 2;
            if i == 2 {
                out.push_str(&format!(" {text:>inner$} "));
            } else {
                out.push_str(&format!(" {text:<inner$} "));
            }
            out.push(bar);
        }
        out.push('\n');
    }
    out
}

/// `407050` -> `407,050`.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Keras's readable size: divide by 1024 while at least 1024, two decimals and a unit.
fn readable_size(bytes: usize) -> String {
    let units = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v / 1024.0 >= 1.0 && unit < units.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.2} {}", units[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dense;

    /// Keras 3.15.1's output for this model, captured with `print_fn` at line length 88.
    const KERAS_101: &str = "Model: \"sequential\"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┓
┃ Layer (type)                         ┃ Output Shape                ┃         Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━┩
│ dense (Dense)                        │ (None, 8)                   │              40 │
├──────────────────────────────────────┼─────────────────────────────┼─────────────────┤
│ dense_1 (Dense)                      │ (None, 6)                   │              54 │
├──────────────────────────────────────┼─────────────────────────────┼─────────────────┤
│ dense_2 (Dense)                      │ (None, 1)                   │               7 │
└──────────────────────────────────────┴─────────────────────────────┴─────────────────┘
 Total params: 101 (404.00 B)
 Trainable params: 101 (404.00 B)
 Non-trainable params: 0 (0.00 B)
";

    /// Keras's MNIST MLP summary at line length 76 (its width when stdout is not a terminal).
    const KERAS_MNIST_76: &str = "Model: \"sequential\"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ dense (Dense)                   │ (None, 512)            │       401,920 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense_1 (Dense)                 │ (None, 10)             │         5,130 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 407,050 (1.55 MB)
 Trainable params: 407,050 (1.55 MB)
 Non-trainable params: 0 (0.00 B)
";

    #[test]
    fn summary_matches_keras_character_for_character() {
        let mut m = Sequential::<f32>::with_seed(0);
        m.add(
            Dense::new(8)
                .input_dim(4)
                .kernel_initializer("uniform")
                .activation("relu"),
        )
        .unwrap();
        m.add(Dense::new(6).activation("relu")).unwrap();
        m.add(Dense::new(1).activation("sigmoid")).unwrap();
        assert_eq!(m.summary(), KERAS_101);

        let mut mnist = Sequential::<f32>::with_seed(0);
        mnist
            .add(Dense::new(512).input_dim(784).activation("relu"))
            .unwrap();
        mnist.add(Dense::new(10).activation("softmax")).unwrap();
        assert_eq!(mnist.summary_with_width(76), KERAS_MNIST_76);
    }

    #[test]
    fn unbuilt_layers_show_question_marks() {
        let mut m = Sequential::<f32>::with_seed(0);
        m.add(Dense::new(8)).unwrap();
        let s = m.summary();
        assert!(s.contains("│ dense (Dense)                        │ ?                           │     0 (unbuilt) │"), "{s}");
        assert!(s.contains(" Total params: 0 (0.00 B)"));
    }

    #[test]
    fn helpers() {
        assert_eq!(column_widths(88), [38, 29, 17]);
        assert_eq!(column_widths(76), [33, 24, 15]);
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(40), "40");
        assert_eq!(readable_size(404), "404.00 B");
        assert_eq!(readable_size(1023), "1023.00 B");
        assert_eq!(readable_size(1024), "1.00 KB");
        assert_eq!(readable_size(1_628_200), "1.55 MB");
    }
}
