//! The op's output and gradient equal what candle computes with its own
//! ops, `(xs * mask).affine(scale, 0)`, given the mask bitdrop draws from
//! the same key (`bitdrop::Dropout::fill_mask`).

use bitdrop::{Keyed, Mask, Mode, mask_words};
use bitdrop_candle::{DropoutOp, dropout};
use candle_core::{DType, Device, Result, Tensor, Var};

/// Deterministic inputs in `[-4, 4)`: negatives, no NaN, exact in every
/// dtype after the conversion below (they are rounded to `dtype` once).
fn inputs(shape: &[usize], dtype: DType, seed: u64) -> Result<Tensor> {
    let n = shape.iter().product();
    let mut state = seed;
    let values: Vec<f32> = (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 40) as f32 / (1 << 21) as f32 - 4.0
        })
        .collect();
    Tensor::from_vec(values, shape, &Device::Cpu)?.to_dtype(dtype)
}

/// The 0/1 mask of `shape` that bitdrop draws from `key`, as a tensor of
/// `dtype`.
fn mask_tensor(shape: &[usize], dtype: DType, p: f32, key: Keyed) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let dropout = bitdrop::Dropout::new(p).map_err(candle_core::Error::wrap)?;
    let mut words = vec![0_u64; mask_words(n)];
    dropout
        .fill_mask(Mode::Train, n, &mut words, key)
        .map_err(candle_core::Error::wrap)?;
    let mask = Mask::new(&words[..], n).map_err(candle_core::Error::wrap)?;
    let ones: Vec<f32> = mask
        .iter()
        .map(|kept| if kept { 1.0 } else { 0.0 })
        .collect();
    Tensor::from_vec(ones, shape, &Device::Cpu)?.to_dtype(dtype)
}

/// candle's dropout given the mask: `(xs * mask) * scale`.
fn candle_dropout(xs: &Tensor, mask: &Tensor, p: f32) -> Result<Tensor> {
    let scale = bitdrop::Dropout::new(p)
        .map_err(candle_core::Error::wrap)?
        .scale();
    (xs * mask)?.affine(f64::from(scale), 0.0)
}

/// The values of a float tensor, widened to `f32` (exactly, for f16 and
/// bf16).
fn values(t: &Tensor) -> Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
}

/// Equal as values: `-0.0 == +0.0` (candle's `x * 0` of a negative `x` is
/// `-0.0`, bitdrop's dropped element `+0.0`); the inputs have no NaN.
fn assert_same(ours: &Tensor, theirs: &Tensor, what: &str) -> Result<()> {
    assert_eq!(ours.dims(), theirs.dims(), "{what}: shapes");
    assert_eq!(ours.dtype(), theirs.dtype(), "{what}: dtypes");
    let (a, b) = (values(ours)?, values(theirs)?);
    assert!(a.iter().all(|v| !v.is_nan()), "{what}: NaN");
    let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    assert_eq!(differ, 0, "{what}: {differ} of {} elements differ", a.len());
    Ok(())
}

/// Drop probabilities to test in each dtype. For f16 and bf16 only those
/// whose scale `1 / (1 - p)` is exact in the type (2, 1.25, 4): candle
/// multiplies by the scale rounded to the type and narrows the `f32`
/// product (two roundings), while bitdrop rounds the exact product `x * s`
/// once, so at other scales a few elements may differ in the last place.
/// With these scales the `f32` product is exact and both round once.
fn probabilities(dtype: DType) -> &'static [f32] {
    match dtype {
        DType::F32 => &[0.1, 0.3, 0.5, 0.9],
        _ => &[0.5, 0.2, 0.75],
    }
}

const SHAPES: &[&[usize]] = &[&[1], &[1000], &[7, 129], &[3, 4, 5000], &[2, 5, 64]];
const DTYPES: [DType; 3] = [DType::F32, DType::F16, DType::BF16];

#[test]
fn forward_equals_candle_with_the_same_mask() -> Result<()> {
    for dtype in DTYPES {
        for &p in probabilities(dtype) {
            for (s, &shape) in SHAPES.iter().enumerate() {
                let key = Keyed::new(1000 + s as u64, 77 * s as u64);
                let xs = inputs(shape, dtype, s as u64)?;
                let ours = xs.apply_op1_no_bwd(&DropoutOp::new(p, key)?)?;
                let theirs = candle_dropout(&xs, &mask_tensor(shape, dtype, p, key)?, p)?;
                assert_same(&ours, &theirs, &format!("{dtype:?} p={p} {shape:?}"))?;
                // The function is the op on a contiguous tensor.
                assert_same(&dropout(&xs, p, key)?, &ours, "dropout()")?;
            }
        }
    }
    Ok(())
}

/// A tensor narrowed out of a larger one: contiguous, with its layout
/// starting inside the storage. Element i of the narrowed tensor still
/// takes position `offset + i`.
#[test]
fn narrowed_tensor_with_a_start_offset() -> Result<()> {
    for dtype in DTYPES {
        for &p in probabilities(dtype) {
            let base = inputs(&[10, 300], dtype, 5)?;
            let xs = base.narrow(0, 3, 6)?;
            assert!(xs.is_contiguous());
            assert_eq!(xs.layout().start_offset(), 900);
            let key = Keyed::new(31, 4096 - 100);
            let ours = xs.apply_op1_no_bwd(&DropoutOp::new(p, key)?)?;
            let theirs = candle_dropout(&xs, &mask_tensor(&[6, 300], dtype, p, key)?, p)?;
            assert_same(&ours, &theirs, &format!("narrowed {dtype:?} p={p}"))?;
            // The same as the narrowed tensor copied to a storage of its own.
            let copy = xs.copy()?.apply_op1_no_bwd(&DropoutOp::new(p, key)?)?;
            assert_same(&ours, &copy, "narrowed vs copied")?;
        }
    }
    Ok(())
}

/// From 512 Ki elements on, bitdrop splits the call over rayon's pool;
/// the result is still the serial mask's.
#[test]
fn parallel_sized_tensor() -> Result<()> {
    let shape = [3, 200_000];
    let key = Keyed::new(8, 123_456);
    let xs = inputs(&shape, DType::F32, 9)?;
    let ours = xs.apply_op1_no_bwd(&DropoutOp::new(0.3, key)?)?;
    let theirs = candle_dropout(&xs, &mask_tensor(&shape, DType::F32, 0.3, key)?, 0.3)?;
    assert_same(&ours, &theirs, "600 000 elements")
}

/// `loss = sum(dropout(x) * w)`: the gradient of `x` equals the one candle
/// computes through `(x * mask).affine(scale, 0)` with the same mask.
#[test]
fn gradient_equals_candle_with_the_same_mask() -> Result<()> {
    for dtype in DTYPES {
        for &p in probabilities(dtype) {
            for (s, &shape) in SHAPES.iter().enumerate() {
                let key = Keyed::new(2000 + s as u64, 5 * s as u64);
                let x = Var::from_tensor(&inputs(shape, dtype, 100 + s as u64)?)?;
                let w = inputs(shape, dtype, 200 + s as u64)?;
                let mask = mask_tensor(shape, dtype, p, key)?;

                let y = x.apply_op1(DropoutOp::new(p, key)?)?;
                let grads = (&y * &w)?.sum_all()?.backward()?;
                let ours = grads
                    .get(&x)
                    .ok_or_else(|| candle_core::Error::msg("no grad"))?;

                let y = candle_dropout(x.as_tensor(), &mask, p)?;
                let grads = (&y * &w)?.sum_all()?.backward()?;
                let theirs = grads
                    .get(&x)
                    .ok_or_else(|| candle_core::Error::msg("no grad"))?;

                assert_same(ours, theirs, &format!("grad {dtype:?} p={p} {shape:?}"))?;
            }
        }
    }
    Ok(())
}

/// The gradient through a narrowed view: dropout applied to rows 2..7 of
/// a variable; the other rows get zero gradient, these the masked one.
#[test]
fn gradient_through_a_narrowed_view() -> Result<()> {
    for dtype in DTYPES {
        let p = probabilities(dtype)[0];
        let key = Keyed::new(3, 0);
        let x = Var::from_tensor(&inputs(&[8, 70], dtype, 1)?)?;
        let w = inputs(&[5, 70], dtype, 2)?;
        let mask = mask_tensor(&[5, 70], dtype, p, key)?;

        let y = x.narrow(0, 2, 5)?.apply_op1(DropoutOp::new(p, key)?)?;
        let grads = (&y * &w)?.sum_all()?.backward()?;
        let ours = grads
            .get(&x)
            .ok_or_else(|| candle_core::Error::msg("no grad"))?;

        let y = candle_dropout(&x.narrow(0, 2, 5)?, &mask, p)?;
        let grads = (&y * &w)?.sum_all()?.backward()?;
        let theirs = grads
            .get(&x)
            .ok_or_else(|| candle_core::Error::msg("no grad"))?;

        assert_same(ours, theirs, &format!("narrowed grad {dtype:?}"))?;
    }
    Ok(())
}

/// The backward op also accepts a non-contiguous gradient (it copies it
/// first): the same values as the contiguous one.
#[test]
fn backward_of_a_transposed_gradient() -> Result<()> {
    let op = DropoutOp::new(0.5, Keyed::new(4, 10))?;
    let grad = inputs(&[40, 30], DType::F32, 3)?.t()?;
    assert!(!grad.is_contiguous());
    let ours = op.backward(&grad)?;
    let theirs = candle_dropout(
        &grad.contiguous()?,
        &mask_tensor(&[30, 40], DType::F32, 0.5, Keyed::new(4, 10))?,
        0.5,
    )?;
    assert_same(&ours, &theirs, "transposed gradient")
}
