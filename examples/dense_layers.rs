//! The `Dense` layers of the Keras tutorials, written in brick next to the Keras lines they
//! translate: the 4 -> 8 relu -> 6 relu -> 1 sigmoid network (101 parameters) with its
//! `summary()` and its Graphviz drawing (`to_dot()`, render with `dot -Tpng`), and three
//! single-layer models with their parameter counts (inputs x units weights + units biases).
//!
//! Run with `cargo run --release --example dense_layers`.

use brick::prelude::*;

/// One single-layer model of the tutorial.
pub struct SingleLayer {
    /// The Keras line that builds it.
    pub keras: &'static str,
    /// Its number of parameters.
    pub params: usize,
}

/// The models' descriptions.
pub struct DenseLayers {
    /// The three-layer network's `summary()`.
    pub summary: String,
    /// The three-layer network's `to_dot()`.
    pub dot: String,
    /// The three-layer network's parameter count.
    pub params: usize,
    /// The three-layer network's layer names, in order.
    pub layer_names: Vec<String>,
    /// The single-layer models.
    pub single_layers: Vec<SingleLayer>,
}

/// A model of one Dense layer on `input_dim` inputs.
fn single_layer(
    seed: u64,
    units: usize,
    input_dim: usize,
    activation: &str,
) -> Result<Sequential, Box<dyn std::error::Error>> {
    let mut model = Sequential::with_seed(seed);
    model.add(
        Dense::new(units)
            .input_dim(input_dim)
            .activation(activation),
    )?;
    Ok(model)
}

/// Builds the models (weights drawn from `seed`; the counts do not depend on it).
pub fn run(seed: u64) -> Result<DenseLayers, Box<dyn std::error::Error>> {
    // model = Sequential()
    let mut model: Sequential = Sequential::with_seed(seed);
    // model.add(Dense(8, input_dim=4, kernel_initializer='uniform', activation='relu'))
    model.add(
        Dense::new(8)
            .input_dim(4)
            .kernel_initializer("uniform")
            .activation("relu"),
    )?;
    // model.add(Dense(6, kernel_initializer='uniform', activation='relu'))
    model.add(
        Dense::new(6)
            .kernel_initializer("uniform")
            .activation("relu"),
    )?;
    // model.add(Dense(1, kernel_initializer='uniform', activation='sigmoid'))
    model.add(
        Dense::new(1)
            .kernel_initializer("uniform")
            .activation("sigmoid"),
    )?;

    let single_layers = vec![
        SingleLayer {
            keras: "Dense(1, input_dim=3, activation='sigmoid')",
            // Sequential([Dense(1, input_dim=3, activation='sigmoid')]).count_params()
            params: single_layer(seed, 1, 3, "sigmoid")?.count_params(),
        },
        SingleLayer {
            keras: "Dense(3, input_dim=4, activation='softmax')",
            // Sequential([Dense(3, input_dim=4, activation='softmax')]).count_params()
            params: single_layer(seed, 3, 4, "softmax")?.count_params(),
        },
        SingleLayer {
            keras: "Dense(4, input_dim=6, activation='relu')",
            // Sequential([Dense(4, input_dim=6, activation='relu')]).count_params()
            params: single_layer(seed, 4, 6, "relu")?.count_params(),
        },
    ];

    Ok(DenseLayers {
        // model.summary()
        summary: model.summary(),
        // keras.utils.model_to_dot(model, show_shapes=True)
        dot: model.to_dot(),
        // model.count_params()
        params: model.count_params(),
        layer_names: model
            .layers()
            .iter()
            .map(|l| l.name().unwrap_or("?").to_string())
            .collect(),
        single_layers,
    })
}

fn main() -> std::process::ExitCode {
    brick::run_main(try_main)
}

fn try_main() -> Result<(), Box<dyn std::error::Error>> {
    let result = run(0)?;
    print!("{}", result.summary);
    println!("\nto_dot():\n{}", result.dot);
    println!("Single-layer models:");
    for m in &result.single_layers {
        println!("  {:<45} {:>3} parameters", m.keras, m.params);
    }
    Ok(())
}
