//! Errors, the in-place op for Monte Carlo dropout, and the layer's
//! training and evaluation behaviour.

use bitdrop::{Keyed, Mode, derive_seed};
use bitdrop_candle::{Dropout, DropoutInplace, DropoutOp, dropout};
use candle_core::{DType, Device, ModuleT, Result, Tensor, Var};

fn ramp(n: usize) -> Result<Tensor> {
    // 1, 2, ..., n: no zeros, so a zero output is a dropped element.
    Tensor::arange(1.0_f32, n as f32 + 1.0, &Device::Cpu)
}

fn values(t: &Tensor) -> Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
}

/// The error's message, checked to name bitdrop's op and to contain
/// `problem`.
fn assert_error<T: std::fmt::Debug>(result: Result<T>, op: &str, problem: &str) {
    let message = match result {
        Ok(value) => panic!("expected an error about {problem:?}, got {value:?}"),
        Err(e) => e.to_string(),
    };
    assert!(
        message.starts_with(&format!("{op}: ")),
        "{message:?} should start with {op:?}"
    );
    assert!(
        message.contains(problem),
        "{message:?} should say {problem:?}"
    );
}

// ---- errors ----

#[test]
fn non_contiguous_input_is_an_error_for_the_ops() -> Result<()> {
    let t = ramp(6)?.reshape((2, 3))?.t()?;
    assert!(!t.is_contiguous());
    let key = Keyed::new(1, 0);
    assert_error(
        t.apply_op1(DropoutOp::new(0.5, key)?),
        "bitdrop-dropout",
        "not contiguous (shape [3, 2], stride [1, 3])",
    );
    assert_error(
        t.apply_op1_no_bwd(&DropoutOp::new(0.5, key)?),
        "bitdrop-dropout",
        "call `.contiguous()`",
    );
    let before = values(&t)?;
    assert_error(
        t.inplace_op1(&DropoutInplace::new(0.5, key)?),
        "bitdrop-dropout-inplace",
        "not contiguous",
    );
    assert_eq!(
        values(&t)?,
        before,
        "a failed in-place call changed nothing"
    );
    Ok(())
}

#[test]
fn dropout_and_the_layer_make_a_transposed_input_contiguous() -> Result<()> {
    let t = ramp(6000)?.reshape((60, 100))?.t()?;
    let key = Keyed::new(1, 0);
    let ours = dropout(&t, 0.5, key)?;
    let copied = dropout(&t.contiguous()?, 0.5, key)?;
    assert_eq!(values(&ours)?, values(&copied)?);
    let layer = Dropout::with_seed(0.5, 3);
    let out = layer.forward_t(&t, true)?;
    assert_eq!(
        values(&out)?,
        values(&dropout(&t.contiguous()?, 0.5, layer.key(0))?)?
    );
    Ok(())
}

#[test]
fn unsupported_dtypes_are_errors() -> Result<()> {
    let key = Keyed::new(1, 0);
    for (dtype, name) in [
        (DType::F64, "f64"),
        (DType::U8, "u8"),
        (DType::U32, "u32"),
        (DType::I64, "i64"),
    ] {
        let t = ramp(10)?.to_dtype(dtype)?;
        let problem = format!("unsupported dtype {name}");
        assert_error(
            t.apply_op1(DropoutOp::new(0.5, key)?),
            "bitdrop-dropout",
            &problem,
        );
        assert_error(dropout(&t, 0.5, key), "bitdrop-dropout", &problem);
        assert_error(
            t.inplace_op1(&DropoutInplace::new(0.5, key)?),
            "bitdrop-dropout-inplace",
            &problem,
        );
        assert_error(
            Dropout::new(0.5).forward_t(&t, true),
            "bitdrop-dropout",
            &problem,
        );
        // Evaluation mode, and p == 0, are the identity for any tensor.
        assert_eq!(Dropout::new(0.5).forward_t(&t, false)?.dtype(), dtype);
        assert_eq!(dropout(&t, 0.0, key)?.dtype(), dtype);
    }
    Ok(())
}

#[test]
fn invalid_probabilities_are_errors() -> Result<()> {
    let xs = ramp(10)?;
    let key = Keyed::new(1, 0);
    for p in [-0.1, 1.5, f32::NAN, f32::INFINITY, -f32::INFINITY, -1e-9] {
        assert_error(
            DropoutOp::new(p, key),
            "bitdrop-dropout",
            "drop probability",
        );
        assert_error(
            DropoutInplace::new(p, key),
            "bitdrop-dropout-inplace",
            "not in 0.0..=1.0",
        );
        assert_error(dropout(&xs, p, key), "bitdrop-dropout", "drop probability");
        let layer = Dropout::new(p);
        assert_error(
            layer.forward_t(&xs, true),
            "bitdrop-dropout",
            "drop probability",
        );
        assert_eq!(values(&layer.forward_t(&xs, false)?)?, values(&xs)?);
    }
    assert_error(
        DropoutOp::new(1.5, key),
        "bitdrop-dropout",
        "drop probability 1.5 is not in 0.0..=1.0",
    );
    Ok(())
}

#[test]
fn keys_running_past_the_stream_end_are_errors() -> Result<()> {
    let xs = ramp(100)?;
    let key = Keyed::new(1, u64::MAX - 10);
    assert_error(
        xs.apply_op1(DropoutOp::new(0.5, key)?),
        "bitdrop-dropout",
        "run past 2^64",
    );
    assert_error(
        DropoutOp::new(0.5, key)?.backward(&xs),
        "bitdrop-dropout-backward",
        "run past 2^64",
    );
    assert_error(
        xs.inplace_op1(&DropoutInplace::new(0.5, key)?),
        "bitdrop-dropout-inplace",
        "run past 2^64",
    );
    assert_eq!(values(&xs)?, values(&ramp(100)?)?, "unchanged");
    // The last position that fits.
    let fits = Keyed::new(1, u64::MAX - 99);
    assert_eq!(xs.apply_op1(DropoutOp::new(0.5, fits)?)?.dims(), &[100]);
    Ok(())
}

// ---- p = 0 and p = 1 ----

#[test]
fn p_zero_is_the_identity_and_p_one_drops_everything() -> Result<()> {
    let xs = Var::from_tensor(&ramp(300)?)?;
    let key = Keyed::new(5, 0);
    let same = dropout(&xs, 0.0, key)?;
    assert_eq!(values(&same)?, values(&xs)?);
    assert_eq!(same.id(), xs.id(), "p == 0 returns xs.clone()");

    let op = DropoutOp::new(0.0, key)?;
    assert_eq!(values(&xs.apply_op1(op)?)?, values(&xs)?);

    let gone = dropout(&xs, 1.0, key)?;
    assert!(
        values(&gone)?.iter().all(|&v| v.to_bits() == 0),
        "+0.0 everywhere"
    );
    let grads = gone.sum_all()?.backward()?;
    let g = grads
        .get(&xs)
        .ok_or_else(|| candle_core::Error::msg("no grad"))?;
    assert!(values(g)?.iter().all(|&v| v == 0.0));
    Ok(())
}

/// A dropped element is `+0.0` for negative inputs too (candle's
/// `xs * mask` would give `-0.0`), in every dtype, out of place and in
/// place; kept ones are `x * scale`, negative.
#[test]
fn dropped_negative_elements_are_positive_zero() -> Result<()> {
    let key = Keyed::new(12, 0);
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        let xs = (ramp(512)?.neg()?).to_dtype(dtype)?; // -1, ..., -512
        let out = dropout(&xs, 0.5, key)?;
        let inplace = xs.copy()?;
        inplace.inplace_op1(&DropoutInplace::new(0.5, key)?)?;
        for t in [&out, &inplace] {
            let v = values(t)?;
            let dropped = v.iter().filter(|&&v| v.to_bits() == 0).count();
            let negative_zero = v
                .iter()
                .filter(|&&v| v.to_bits() == (-0.0f32).to_bits())
                .count();
            assert_eq!(negative_zero, 0, "{dtype:?}");
            assert!(
                (150..362).contains(&dropped),
                "{dtype:?}: {dropped} dropped"
            );
            assert_eq!(
                v.iter().filter(|&&v| v < 0.0).count() + dropped,
                512,
                "{dtype:?}"
            );
        }
    }
    Ok(())
}

// ---- the in-place op (Monte Carlo dropout) ----

#[test]
fn in_place_op_drops_like_bitdrop() -> Result<()> {
    for p in [0.1_f32, 0.5, 0.9] {
        let key = Keyed::new(42, 999);
        let xs = ramp(5000)?;
        xs.inplace_op1(&DropoutInplace::new(p, key)?)?;
        let mut expected: Vec<f32> = (1..=5000).map(|i| i as f32).collect();
        bitdrop::Dropout::new(p)
            .map_err(candle_core::Error::wrap)?
            .forward(Mode::Train, &mut expected, key)
            .map_err(candle_core::Error::wrap)?;
        let got = values(&xs)?;
        assert_eq!(got, expected);
        let dropped = got.iter().filter(|&&v| v == 0.0).count() as f32 / 5000.0;
        assert!((dropped - p).abs() < 0.03, "p = {p}: dropped {dropped}");
        // The out-of-place op gives the same.
        let op = DropoutOp::new(p, key)?;
        assert_eq!(values(&ramp(5000)?.apply_op1_no_bwd(&op)?)?, expected);
    }
    Ok(())
}

#[test]
fn in_place_op_changes_only_its_view() -> Result<()> {
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        let base = ramp(40)?.to_dtype(dtype)?.reshape((4, 10))?;
        let rows = base.narrow(0, 1, 2)?; // elements 10..30 of the storage
        let key = Keyed::new(6, 0);
        rows.inplace_op1(&DropoutInplace::new(0.5, key)?)?;
        let all = values(&base)?;
        let expected: Vec<f32> = (1..=40).map(|i| i as f32).collect();
        assert_eq!(all[..10], expected[..10]);
        assert_eq!(all[30..], expected[30..]);
        let mut middle = expected[10..30].to_vec();
        bitdrop::Dropout::new(0.5)
            .map_err(candle_core::Error::wrap)?
            .forward(Mode::Train, &mut middle, key)
            .map_err(candle_core::Error::wrap)?;
        assert_eq!(all[10..30], middle[..], "{dtype:?}");
        assert!(middle.contains(&0.0) && middle.iter().any(|&v| v != 0.0));
    }
    Ok(())
}

#[test]
fn monte_carlo_passes_with_derived_keys() -> Result<()> {
    let seed = 11;
    let pass = |k: u64| -> Result<Vec<f32>> {
        let hidden = ramp(256)?.relu()?;
        let key = Keyed::new(derive_seed(seed, &[k]), 0);
        hidden.inplace_op1(&DropoutInplace::new(0.3, key)?)?;
        values(&hidden)
    };
    let passes: Vec<Vec<f32>> = (0..8).map(pass).collect::<Result<_>>()?;
    for i in 0..passes.len() {
        for j in i + 1..passes.len() {
            assert_ne!(passes[i], passes[j], "passes {i} and {j} share a mask");
        }
    }
    assert_eq!(passes[3], pass(3)?, "a pass is reproducible from its key");
    Ok(())
}

// ---- the layer ----

#[test]
fn layer_in_evaluation_is_the_identity() -> Result<()> {
    let layer = Dropout::new(0.5);
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        let xs = ramp(1000)?.to_dtype(dtype)?;
        let ys = layer.forward_t(&xs, false)?;
        assert_eq!(ys.id(), xs.id(), "xs.clone()");
        let ys = xs.apply_t(&layer, false)?;
        assert_eq!(values(&ys)?, values(&xs)?);
    }
    assert_eq!(layer.calls(), 0, "evaluation draws no key");
    Ok(())
}

#[test]
fn layer_in_training_draws_a_new_mask_per_call() -> Result<()> {
    let layer = Dropout::new(0.5);
    let xs = ramp(1000)?;
    let a = values(&layer.forward_t(&xs, true)?)?;
    let b = values(&ModuleT::forward_t(&layer, &xs, true)?)?;
    let c = values(&layer.forward(&xs, true)?)?;
    assert_ne!(a, b);
    assert_ne!(b, c);
    assert_eq!(layer.calls(), 3);
    // Each is dropout with the key of its call.
    assert_eq!(b, values(&dropout(&xs, 0.5, layer.key(1))?)?);
    // Two layers from `new` have different seeds.
    assert_ne!(Dropout::new(0.5).seed(), Dropout::new(0.5).seed());
    Ok(())
}

#[test]
fn with_seed_is_reproducible_across_instances() -> Result<()> {
    let (first, second) = (Dropout::with_seed(0.2, 77), Dropout::with_seed(0.2, 77));
    let xs = ramp(3000)?.to_dtype(DType::BF16)?;
    for call in 0..4_u64 {
        let a = values(&first.forward_t(&xs, true)?)?;
        let b = values(&second.forward_t(&xs, true)?)?;
        assert_eq!(a, b, "call {call}");
        let key = Keyed::new(derive_seed(77, &[call]), 0);
        assert_eq!(first.key(call), key);
        assert_eq!(a, values(&dropout(&xs, 0.2, key)?)?);
    }
    // Another seed, other masks.
    let other = Dropout::with_seed(0.2, 78);
    assert_ne!(
        values(&other.forward_t(&xs, true)?)?,
        values(&dropout(&xs, 0.2, first.key(0))?)?
    );
    Ok(())
}

#[test]
fn clones_share_the_call_counter() -> Result<()> {
    let layer = Dropout::with_seed(0.5, 9);
    let clone = layer.clone();
    let xs = ramp(500)?;
    let a = values(&layer.forward_t(&xs, true)?)?;
    let b = values(&clone.forward_t(&xs, true)?)?;
    assert_ne!(a, b, "a clone does not repeat its original's mask");
    assert_eq!((layer.calls(), clone.calls()), (2, 2));
    Ok(())
}

#[test]
fn layer_gradient_uses_each_calls_mask() -> Result<()> {
    let layer = Dropout::with_seed(0.5, 12);
    let x = Var::from_tensor(&ramp(2000)?)?;
    let _first = layer.forward_t(&x, true)?; // call 0, not differentiated
    let y = layer.forward_t(&x, true)?; // call 1
    let grads = y.sum_all()?.backward()?;
    let g = values(
        grads
            .get(&x)
            .ok_or_else(|| candle_core::Error::msg("no grad"))?,
    )?;
    let y = values(&y)?;
    for (g, y) in g.iter().zip(&y) {
        assert_eq!(*g, if *y == 0.0 { 0.0 } else { 2.0 });
    }
    Ok(())
}
