//! A small MLP with bitdrop dropout, trained on two interleaved spirals:
//! shared by `tests/training.rs` (which asserts that the loss falls) and
//! `examples/mlp.rs` (which prints the curve).
//!
//! Everything is deterministic: the data and the initial weights come from
//! a fixed-seed SplitMix64, and the dropout layers from fixed seeds, so the
//! loss curve is the same on every run.

use bitdrop::derive_seed;
use bitdrop_candle::Dropout;
use candle_core::{D, DType, Device, Module, ModuleT, Result, Tensor};
use candle_nn::{AdamW, Linear, Optimizer, ParamsAdamW, VarBuilder, VarMap};

/// What to train.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Points per spiral (two spirals, one class each).
    pub points_per_class: usize,
    /// Width of the two hidden layers.
    pub hidden: usize,
    /// Drop probability after each hidden layer.
    pub p: f32,
    /// Full-batch AdamW steps.
    pub steps: usize,
    /// AdamW's learning rate.
    pub lr: f64,
    /// Seeds the data, the weights and the dropout masks.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            points_per_class: 200,
            hidden: 32,
            p: 0.1,
            steps: 150,
            lr: 0.02,
            seed: 2026,
        }
    }
}

/// What training did.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The training loss (mean cross-entropy, dropout on) of every step.
    pub losses: Vec<f32>,
    /// The share of training points classified right with dropout off.
    pub accuracy: f32,
}

/// SplitMix64: enough randomness for data and weights, with no dependency.
pub struct SplitMix(u64);

impl SplitMix {
    /// The generator of `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * unit
    }
}

/// Two interleaved spirals of `n` points each, with a little noise:
/// inputs `[2n, 2]` (f32) and labels `[2n]` (u32, 0 or 1).
pub fn spirals(n: usize, rng: &mut SplitMix, device: &Device) -> Result<(Tensor, Tensor)> {
    let mut xs = Vec::with_capacity(4 * n);
    let mut ys = Vec::with_capacity(2 * n);
    for class in 0..2_u32 {
        for i in 0..n {
            let r = (i as f32 + 0.5) / n as f32; // radius in (0, 1)
            let angle = 1.5 * std::f32::consts::TAU * r + class as f32 * std::f32::consts::PI;
            xs.push(r * angle.cos() + rng.uniform(-0.03, 0.03));
            xs.push(r * angle.sin() + rng.uniform(-0.03, 0.03));
            ys.push(class);
        }
    }
    Ok((
        Tensor::from_vec(xs, (2 * n, 2), device)?,
        Tensor::from_vec(ys, 2 * n, device)?,
    ))
}

/// 2 -> hidden -> hidden -> 2, relu, dropout after each hidden layer.
pub struct Mlp {
    layers: [Linear; 3],
    dropouts: [Dropout; 2],
}

impl Mlp {
    /// The layers, as `candle_nn::linear` makes them in `varmap`, with
    /// their weights then set from `rng` (He-uniform, biases zero) so that
    /// runs are reproducible; dropout layer `l` gets seed
    /// `derive_seed(seed, &[l])`.
    pub fn new(
        config: &Config,
        varmap: &mut VarMap,
        rng: &mut SplitMix,
        device: &Device,
    ) -> Result<Self> {
        let vb = VarBuilder::from_varmap(varmap, DType::F32, device);
        let dims = [
            (2, config.hidden),
            (config.hidden, config.hidden),
            (config.hidden, 2),
        ];
        let mut layers = Vec::with_capacity(3);
        for (l, &(fan_in, fan_out)) in dims.iter().enumerate() {
            layers.push(candle_nn::linear(fan_in, fan_out, vb.pp(format!("l{l}")))?);
            let bound = (6.0 / fan_in as f32).sqrt();
            let weights: Vec<f32> = (0..fan_in * fan_out)
                .map(|_| rng.uniform(-bound, bound))
                .collect();
            let weights = Tensor::from_vec(weights, (fan_out, fan_in), device)?;
            varmap.set_one(format!("l{l}.weight"), weights)?;
            varmap.set_one(
                format!("l{l}.bias"),
                Tensor::zeros(fan_out, DType::F32, device)?,
            )?;
        }
        let [l0, l1, l2]: [Linear; 3] = layers
            .try_into()
            .map_err(|_| candle_core::Error::msg("three layers"))?;
        let dropout = |l: u64| Dropout::with_seed(config.p, derive_seed(config.seed, &[l]));
        Ok(Mlp {
            layers: [l0, l1, l2],
            dropouts: [dropout(0), dropout(1)],
        })
    }
}

impl ModuleT for Mlp {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let [l0, l1, l2] = &self.layers;
        let [d0, d1] = &self.dropouts;
        let h = d0.forward_t(&l0.forward(xs)?.relu()?, train)?;
        let h = d1.forward_t(&l1.forward(&h)?.relu()?, train)?;
        l2.forward(&h)
    }
}

/// Trains an [`Mlp`] on [`spirals`], full batch, calling `each_step(step,
/// loss)` after every step.
pub fn train(config: &Config, mut each_step: impl FnMut(usize, f32)) -> Result<Outcome> {
    let device = Device::Cpu;
    let mut rng = SplitMix::new(config.seed);
    let (xs, ys) = spirals(config.points_per_class, &mut rng, &device)?;
    let mut varmap = VarMap::new();
    let model = Mlp::new(config, &mut varmap, &mut rng, &device)?;
    let params = ParamsAdamW {
        lr: config.lr,
        weight_decay: 0.0,
        ..ParamsAdamW::default()
    };
    let mut optimizer = AdamW::new(varmap.all_vars(), params)?;
    let mut losses = Vec::with_capacity(config.steps);
    for step in 0..config.steps {
        let logits = model.forward_t(&xs, true)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &ys)?;
        optimizer.backward_step(&loss)?;
        let loss = loss.to_scalar::<f32>()?;
        losses.push(loss);
        each_step(step, loss);
    }
    let predictions = model.forward_t(&xs, false)?.argmax(D::Minus1)?;
    let right = predictions.eq(&ys)?.to_dtype(DType::F32)?.mean_all()?;
    Ok(Outcome {
        losses,
        accuracy: right.to_scalar::<f32>()?,
    })
}
