//! The README's reliability table, kept true: every row (bad input, the error brick gives) is
//! a scenario here, run and checked: the call fails, nothing panics, and the error's message
//! contains the text quoted in the table. A row without a scenario, or a scenario without a
//! row, fails the test.
//!
//! That a rejected call also leaves the model and the files unchanged is checked by the
//! tests next to each part (model, save, io, data).

mod common;
use common::scratch;

use brick::prelude::*;

/// A compiled 2 -> 3 -> 1 model.
fn model() -> Sequential {
    let mut m = Sequential::with_seed(1);
    m.add(Dense::new(3).input_dim(2).activation("relu"))
        .unwrap();
    m.add(Dense::new(1).activation("sigmoid")).unwrap();
    m.compile("adam", "binary_crossentropy", ["accuracy"])
        .unwrap();
    m
}

/// A compiled 2 -> 3-class softmax model.
fn classifier(loss: &str) -> Sequential {
    let mut m = Sequential::with_seed(1);
    m.add(Dense::new(3).input_dim(2).activation("softmax"))
        .unwrap();
    m.compile("sgd", loss, []).unwrap();
    m
}

fn t(values: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape).unwrap()
}

fn x4() -> Tensor {
    t(&[0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], &[4, 2])
}

fn y4() -> Tensor {
    t(&[0.0, 1.0, 1.0, 0.0], &[4, 1])
}

fn quiet() -> FitOptions {
    FitOptions {
        verbose: 0,
        ..Default::default()
    }
}

fn err<V: std::fmt::Debug, E: std::fmt::Display>(r: Result<V, E>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

/// A saved weights file of `model()` in `dir`, as bytes.
fn weights_file(dir: &std::path::Path) -> Vec<u8> {
    let path = dir.join("good.safetensors");
    model().save_weights(&path).unwrap();
    std::fs::read(path).unwrap()
}

/// Loads `bytes` as a weights file into `model()`.
fn load_weights(bytes: &[u8]) -> String {
    err(model().load_weights_from_bytes(bytes))
}

/// The error of scenario `n` (the row of the README's table).
fn scenario(n: usize) -> String {
    let dir = scratch("reliability");
    let message = match n {
        1 => err(model().fit(&t(&[1.0; 12], &[4, 3]), &y4(), quiet())),
        2 => err(model().fit(&x4(), &t(&[1.0; 3], &[3, 1]), quiet())),
        3 => err(model().fit(&t(&[], &[0, 2]), &t(&[], &[0, 1]), quiet())),
        4 => err(model().fit(
            &x4(),
            &y4(),
            FitOptions {
                batch_size: 0,
                ..quiet()
            },
        )),
        5 => err(model().fit(
            &x4(),
            &y4(),
            FitOptions {
                epochs: 0,
                ..quiet()
            },
        )),
        6 => err(model().fit(
            &t(&[0.0, f32::NAN, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0], &[4, 2]),
            &y4(),
            quiet(),
        )),
        7 => err(model().fit(&x4(), &t(&[0.0, f32::INFINITY, 1.0, 0.0], &[4, 1]), quiet())),
        8 => err(classifier("sparse_categorical_crossentropy").fit(
            &x4(),
            &t(&[0.0, 1.0, 3.0, 2.0], &[4]),
            quiet(),
        )),
        9 => err(classifier("categorical_crossentropy").fit(
            &x4(),
            &t(
                &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 1.0],
                &[4, 3],
            ),
            quiet(),
        )),
        10 => err(model().add(Dense::new(2).activation("rleu"))),
        11 => err(model().add(Dense::new(2).kernel_initializer("glorot"))),
        12 => err(model().compile("adam", "crossentropy", [])),
        13 => err(model().compile("adamm", "mse", [])),
        14 => {
            let mut m = Sequential::with_seed(1);
            m.add(Dense::new(1).input_dim(2)).unwrap();
            err(m.fit(&x4(), &y4(), quiet()))
        }
        15 => err(model().set_weights(&model().get_weights()[..3])),
        16 => {
            let mut w = model().get_weights();
            w[0] = Tensor::zeros(&[3, 2]);
            err(model().set_weights(&w))
        }
        17 => {
            let bytes = weights_file(&dir);
            load_weights(&bytes[..bytes.len() / 2])
        }
        18 => {
            let mut bytes = weights_file(&dir);
            let last = bytes.len() - 2;
            bytes[last] ^= 0x10;
            load_weights(&bytes)
        }
        19 => {
            let mut other = Sequential::with_seed(1);
            other.add(Dense::new(5).input_dim(2)).unwrap();
            other.add(Dense::new(1)).unwrap();
            other.save_weights(dir.join("other.safetensors")).unwrap();
            load_weights(&std::fs::read(dir.join("other.safetensors")).unwrap())
        }
        20 => {
            let mut wide = Sequential::<f64>::default();
            wide.add(Dense::new(3).input_dim(2)).unwrap();
            wide.add(Dense::new(1)).unwrap();
            wide.save_weights(dir.join("f64.safetensors")).unwrap();
            load_weights(&std::fs::read(dir.join("f64.safetensors")).unwrap())
        }
        21 => load_weights(b"PK\x03\x04 this is a zip archive, not safetensors"),
        22 => err(Sequential::<f32>::from_json(
            "{\"class_name\": \"Sequential\", ",
        )),
        23 => err(Sequential::<f32>::from_json(&model().to_json().replacen(
            "\"Dense\"",
            "\"Conv3D\"",
            1,
        ))),
        24 => err(brick::data::parse_csv::<f32>(
            "a,b,y\n1,2,0\n3,4\n",
            "y",
            "table.csv".as_ref(),
        )),
        25 => err(brick::data::parse_csv::<f32>(
            "a,b,y\n1,2,0\n3,four,1\n",
            "y",
            "table.csv".as_ref(),
        )),
        26 => err(brick::data::parse_idx(
            &[1, 2, 0x08, 1, 0, 0, 0, 1, 7][..],
            "x.idx".as_ref(),
        )),
        27 => err(brick::data::parse_idx(
            &[0, 0, 0x08, 0][..],
            "x.idx".as_ref(),
        )),
        28 => err(brick::data::parse_idx(
            &[0, 0, 0x08, 1, 0, 0, 0, 5, 1, 2][..],
            "x.idx".as_ref(),
        )),
        29 => err(model().load_weights(dir.join("missing.safetensors"))),
        30 => err(model().save(dir.join("no-such-dir").join("m.safetensors"))),
        31 => {
            let mut m = Sequential::with_seed(0);
            m.add(Dense::new(1).input_dim(1)).unwrap();
            m.compile(SGD::new(1e10), "mse", []).unwrap();
            let x = t(&[1.0, 2.0, 3.0, 4.0], &[4, 1]);
            let y = t(&[1e30, -1e30, 1e30, -1e30], &[4, 1]);
            err(m.fit(
                &x,
                &y,
                FitOptions {
                    epochs: 3,
                    batch_size: 2,
                    shuffle: false,
                    callbacks: vec![Box::new(TerminateOnNaN)],
                    ..quiet()
                },
            ))
        }
        32 => {
            model()
                .save_weights(dir.join("weights.safetensors"))
                .unwrap();
            err(Sequential::<f32>::load(dir.join("weights.safetensors")))
        }
        33 => err(Sequential::<f32>::with_seed(1).add(Dense::new(4).input_dim(usize::MAX / 2))),
        34 => {
            // A saved model whose config is edited to ask for 300 million hidden units: the
            // file's 13 weights cannot fill them, so nothing is allocated.
            model().save(dir.join("m.safetensors")).unwrap();
            let bytes = std::fs::read(dir.join("m.safetensors")).unwrap();
            let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            let header = std::str::from_utf8(&bytes[8..8 + len]).unwrap();
            assert!(header.contains(r#"\"units\":3"#), "{header}");
            let header = header.replacen(r#"\"units\":3"#, r#"\"units\":300000000"#, 1);
            let mut hostile = (header.len() as u64).to_le_bytes().to_vec();
            hostile.extend_from_slice(header.as_bytes());
            hostile.extend_from_slice(&bytes[8 + len..]);
            std::fs::write(dir.join("hostile.safetensors"), hostile).unwrap();
            err(Sequential::<f32>::load(dir.join("hostile.safetensors")))
        }
        35 => {
            let tape = Tape::<f32>::new();
            let w = tape.param(&t(&[3.0], &[1]));
            let loss = (w * w * w).sum_all();
            let unrecorded = brick::autograd::GradOptions {
                seed: None,
                create_graph: false,
            };
            let g = loss.grad_with(&[w], unrecorded).unwrap()[0];
            err((loss + (g * g).sum_all()).backward())
        }
        36 => {
            let (tape, other) = (Tape::<f32>::new(), Tape::<f32>::new());
            let x = tape.param(&t(&[1.0], &[1]));
            let foreign = other.param(&t(&[1.0], &[1]));
            err((x * x).sum_all().grad(&[foreign]))
        }
        37 => err(brick::autograd::hvp(
            |p| p[0].square().sum_all(),
            &[t(&[1.0, 2.0], &[2])],
            &[t(&[1.0, 1.0, 1.0], &[3])],
        )),
        38 => err(brick::autograd::jacobian(
            |x| x * 2.0,
            &Tensor::<f32>::zeros(&[10_000_000]),
        )),
        39 => {
            let mut m = Sequential::with_seed(0);
            m.add(Input::new([28, 28, 1])).unwrap();
            m.add(Conv2D::new(4, 3)).unwrap();
            m.add(Flatten::new()).unwrap();
            m.add(Dense::new(10).activation("softmax")).unwrap();
            m.compile("adam", "categorical_crossentropy", []).unwrap();
            let y = to_categorical::<f32>(&[0, 1], Some(10)).unwrap();
            err(m.fit(&Tensor::zeros(&[2, 28, 28]), &y, quiet()))
        }
        40 => {
            let mut m = Sequential::<f32>::with_seed(0);
            m.add(Input::new([2, 2, 1])).unwrap();
            err(m.add(Conv2D::new(4, 3)).map(|_| ()))
        }
        41 => err(Sequential::<f32>::with_seed(0)
            .add(Conv2D::new(4, 3).padding("full"))
            .map(|_| ())),
        42 => err(Sequential::<f32>::with_seed(0)
            .add(Dropout::new(1.5))
            .map(|_| ())),
        43 => {
            let path = dir.join("custom.safetensors");
            model().save(&path).unwrap();
            // The same file as a program with a layer class of its own would write it.
            let mut bytes = std::fs::read(&path).unwrap();
            let (from, to) = (b"\\\"Dense\\\"", b"\\\"Atten\\\"");
            let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
            bytes[at..at + from.len()].copy_from_slice(to);
            err(Sequential::<f32>::load_from_bytes(&bytes))
        }
        _ => panic!("no scenario {n}"),
    };
    std::fs::remove_dir_all(&dir).unwrap();
    message
}

/// The number of scenarios (rows of the table).
const SCENARIOS: usize = 43;

/// The rows of the README's reliability table: (number, quoted error text).
fn readme_rows() -> Vec<(usize, String)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## Reliability")
        .nth(1)
        .expect("README has a Reliability section");
    section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split(" | ").collect();
            let n = cells.first()?.trim_start_matches('|').trim().parse().ok()?;
            // The last cell holds the error text in backticks.
            let quoted = cells.last()?.split('`').nth(1)?.to_string();
            Some((n, quoted))
        })
        .collect()
}

#[test]
fn every_row_of_the_readme_table_is_what_brick_says() {
    let rows = readme_rows();
    let numbers: Vec<usize> = rows.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        numbers,
        (1..=SCENARIOS).collect::<Vec<_>>(),
        "table rows and scenarios differ"
    );
    for (n, quoted) in rows {
        let message = scenario(n);
        assert!(
            message.contains(&quoted),
            "row {n}: the README says `{quoted}`, brick says: {message}"
        );
    }
}

#[test]
#[ignore = "prints the messages, to write the table"]
fn print_messages() {
    for n in 1..=SCENARIOS {
        println!("{n}: {}", scenario(n));
    }
}
