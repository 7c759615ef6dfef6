//! The parallel calls (feature `rayon`): bit-identical to the serial calls
//! on pools of 1, 2, 3 and 8 threads, over shapes that split every way
//! (flat, by outer index, along a shared axis, units decided first), random
//! lengths and key offsets; the same errors, with nothing written.
#![cfg(feature = "rayon")]

mod support;

use bitdrop::{Dropout, Error, Keyed, Mode, Residual, Structured, Units, mask_words};
use rand_xoshiro::rand_core::Rng;
use support::{data, divisors, rng, same, scaled};

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

/// Shapes past the serial threshold (but the first, which may fall short).
fn shapes(r: &mut impl Rng) -> Vec<Units> {
    let mut n = |lo: u32, hi: u32| (lo + r.next_u32() % (hi - lo)) as usize;
    vec![
        Units::elements(n(1, 1_500_000)),
        Units::elements(n(530_000, 900_000)),
        Units::channels_first(n(12, 20), 64, n(700, 1500)).unwrap(),
        Units::channels_last(n(2, 4), n(4000, 9000), 67).unwrap(),
        Units::channels_last(n(40, 80), 196, n(70, 100)).unwrap(),
        Units::time_steps(n(20, 40), n(27_000, 40_000)).unwrap(),
        Units::broadcast(&[2, 8, n(260, 400), 129], &[1]).unwrap(),
        Units::per_sample(n(30, 60), n(18_000, 30_000)).unwrap(),
        // Few units with long runs: split inside a unit's run.
        Units::per_sample(n(2, 4), n(300_000, 500_000)).unwrap(),
        Units::channels_first(1, n(3, 5), n(200_000, 300_000)).unwrap(),
    ]
}

/// Every parallel call against its serial form, on one shape.
fn check_shape(st: &Structured, key: Keyed, seed: u64, threads: usize) {
    let units = *st.units();
    let (len, words) = (units.len(), mask_words(units.count()));
    let xs = data(len, seed);
    let rs = data(len, seed + 1);
    // A bias row that the pieces' boundaries cut through.
    let row = divisors(len)
        .into_iter()
        .rfind(|&d| d <= 5000 && !d.is_power_of_two())
        .unwrap_or(1);
    let bias = data(row, seed + 2);
    let mode = if seed % 7 == 6 {
        Mode::Eval
    } else {
        Mode::Train
    };
    let what = |op: &str| format!("{op}: {units:?}, {key:?}, {threads} threads, {mode:?}");
    let serial_forward = |with_mask: bool| {
        let mut ys = xs.clone();
        let mut mask = vec![!0u64; words + 1];
        if with_mask {
            st.forward_with_mask(mode, &mut ys, &mut mask, key).unwrap();
        } else {
            st.forward(mode, &mut ys, key).unwrap();
        }
        (ys, mask)
    };
    pool(threads).install(|| {
        let (serial, serial_mask) = serial_forward(true);
        let mut ys = xs.clone();
        st.par_forward(mode, &mut ys, key).unwrap();
        assert!(same(&ys, &serial), "{}", what("par_forward"));
        let mut ys = xs.clone();
        st.par_backward(mode, &mut ys, key).unwrap();
        assert!(same(&ys, &serial), "{}", what("par_backward"));
        let mut out = vec![7.0; len];
        st.par_forward_to(mode, &xs, &mut out, key).unwrap();
        assert!(same(&out, &serial), "{}", what("par_forward_to"));
        st.par_backward_to(mode, &xs, &mut out, key).unwrap();
        assert!(same(&out, &serial), "{}", what("par_backward_to"));

        let mut ys = xs.clone();
        let mut mask = vec![!0u64; words + 1];
        st.par_forward_with_mask(mode, &mut ys, &mut mask, key)
            .unwrap();
        assert!(same(&ys, &serial), "{}", what("par_forward_with_mask"));
        assert_eq!(mask, serial_mask, "{}", what("par_forward_with_mask mask"));
        let mut mask = vec![!0u64; words + 1];
        st.par_forward_to_with_mask(mode, &xs, &mut out, &mut mask, key)
            .unwrap();
        assert!(same(&out, &serial), "{}", what("par_forward_to_with_mask"));
        assert_eq!(
            mask,
            serial_mask,
            "{}",
            what("par_forward_to_with_mask mask")
        );
        let mut mask = vec![!0u64; words + 1];
        st.par_fill_mask(mode, &mut mask, key).unwrap();
        assert_eq!(mask, serial_mask, "{}", what("par_fill_mask"));

        // A given mask: the forward's, in training (evaluation ignores it).
        let mut expected = xs.clone();
        st.apply_mask(mode, &mut expected, &serial_mask).unwrap();
        let mut ys = xs.clone();
        st.par_apply_mask(mode, &mut ys, &serial_mask).unwrap();
        assert!(same(&ys, &expected), "{}", what("par_apply_mask"));
        st.par_apply_mask_to(mode, &xs, &serial_mask, &mut out)
            .unwrap();
        assert!(same(&out, &expected), "{}", what("par_apply_mask_to"));

        for b in [None, Some(&bias[..])] {
            let mut serial = rs.clone();
            let io = Residual::IntoResidual {
                x: &xs,
                residual: &mut serial,
            };
            st.residual_add(mode, io, b, key).unwrap();
            let mut parallel = rs.clone();
            let io = Residual::IntoResidual {
                x: &xs,
                residual: &mut parallel,
            };
            st.par_residual_add(mode, io, b, key).unwrap();
            assert!(same(&parallel, &serial), "{}", what("par_residual_add"));
            let mut ys = xs.clone();
            let mut mask = vec![!0u64; words + 1];
            let io = Residual::IntoX {
                x: &mut ys,
                residual: &rs,
            };
            st.par_residual_add_with_mask(mode, io, b, &mut mask, key)
                .unwrap();
            assert!(same(&ys, &serial), "{}", what("par_residual_add_with_mask"));
            assert_eq!(
                mask,
                serial_mask,
                "{}",
                what("par_residual_add_with_mask mask")
            );
            let io = Residual::Into {
                x: &xs,
                residual: &rs,
                out: &mut out,
            };
            st.par_residual_add(mode, io, b, key).unwrap();
            assert!(same(&out, &serial), "{}", what("par_residual_add into"));
        }
    });
}

#[test]
fn parallel_calls_are_the_serial_calls_on_any_pool() {
    let mut r = rng(1);
    let shapes = shapes(&mut r);
    for threads in [1, 2, 3, 8] {
        for (i, &units) in shapes.iter().enumerate().take(scaled(shapes.len(), 2)) {
            assert!(cfg!(miri) || i == 0 || units.len() >= bitdrop::par::SERIAL_BELOW);
            let p = [0.1, 0.5, 0.9, 0.0, 1.0][(i + threads) % 5];
            let st = Dropout::new(p).unwrap().structured(units);
            // Offsets on and off block and word boundaries.
            let offset = match i % 3 {
                0 => 0,
                1 => 4096 * u64::from(r.next_u32() % 50),
                _ => r.next_u64() >> 8,
            };
            let key = Keyed::new(r.next_u64(), offset);
            check_shape(&st, key, i as u64 + 10 * threads as u64, threads);
        }
    }
}

#[test]
fn element_wise_parallel_calls_are_the_serial_calls() {
    let len = scaled(1_100_000, 300);
    let xs = data(len, 3);
    for threads in [2, 3] {
        pool(threads).install(|| {
            for p in [0.1, 0.7] {
                let d = Dropout::new(p).unwrap();
                let key = Keyed::new(5, 123);
                let mut serial = xs.clone();
                let mut mask = vec![0; mask_words(len)];
                d.forward_with_mask(Mode::Train, &mut serial, &mut mask, key)
                    .unwrap();
                let mut ys = xs.clone();
                d.par_forward(Mode::Train, &mut ys, key).unwrap();
                assert!(same(&ys, &serial));
                let mut ys = xs.clone();
                d.par_backward(Mode::Train, &mut ys, key).unwrap();
                assert!(same(&ys, &serial));
                let mut out = vec![0.0; len];
                d.par_forward_to(Mode::Train, &xs, &mut out, key).unwrap();
                assert!(same(&out, &serial));
                d.par_backward_to(Mode::Train, &xs, &mut out, key).unwrap();
                assert!(same(&out, &serial));
                let mut par_mask = vec![0; mask_words(len)];
                let mut ys = xs.clone();
                d.par_forward_with_mask(Mode::Train, &mut ys, &mut par_mask, key)
                    .unwrap();
                assert!(same(&ys, &serial) && par_mask == mask);
                let mut par_mask = vec![0; mask_words(len)];
                d.par_forward_to_with_mask(Mode::Train, &xs, &mut out, &mut par_mask, key)
                    .unwrap();
                assert!(same(&out, &serial) && par_mask == mask);
                let mut par_mask = vec![0; mask_words(len)];
                d.par_fill_mask(Mode::Train, len, &mut par_mask, key)
                    .unwrap();
                assert_eq!(par_mask, mask);
                let mut ys = xs.clone();
                d.par_apply_mask(Mode::Train, &mut ys, &mask).unwrap();
                assert!(same(&ys, &serial));
                d.par_apply_mask_to(Mode::Train, &xs, &mask, &mut out)
                    .unwrap();
                assert!(same(&out, &serial));
                let rs = data(len, 4);
                let mut serial = rs.clone();
                let io = Residual::IntoResidual {
                    x: &xs,
                    residual: &mut serial,
                };
                d.residual_add(Mode::Train, io, None, key).unwrap();
                let mut parallel = rs.clone();
                let io = Residual::IntoResidual {
                    x: &xs,
                    residual: &mut parallel,
                };
                d.par_residual_add(Mode::Train, io, None, key).unwrap();
                assert!(same(&parallel, &serial));
                let mut parallel = rs.clone();
                let mut par_mask = vec![0; mask_words(len)];
                let io = Residual::IntoResidual {
                    x: &xs,
                    residual: &mut parallel,
                };
                d.par_residual_add_with_mask(Mode::Train, io, None, &mut par_mask, key)
                    .unwrap();
                assert!(same(&parallel, &serial) && par_mask == mask);
            }
        });
    }
}

/// The 16-bit types split the same way.
#[cfg(feature = "half")]
#[test]
fn parallel_bf16_is_the_serial_bf16() {
    use bitdrop::half::bf16;
    let units = Units::time_steps(8, scaled(80_000, 40)).unwrap();
    let st = Dropout::new(0.2).unwrap().structured(units);
    let xs: Vec<bf16> = data(units.len(), 5)
        .into_iter()
        .map(bf16::from_f32)
        .collect();
    let key = Keyed::new(6, 77);
    let mut serial = xs.clone();
    st.forward(Mode::Train, &mut serial, key).unwrap();
    pool(3).install(|| {
        let mut ys = xs.clone();
        st.par_forward(Mode::Train, &mut ys, key).unwrap();
        let bits = |v: &[bf16]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&ys), bits(&serial));
    });
}

/// Each error of the serial call, in the same order, with nothing written.
#[test]
fn parallel_errors_are_the_serial_errors_and_write_nothing() {
    let units = Units::channels_last(2, 100_000, 3).unwrap();
    let st = Dropout::new(0.5).unwrap().structured(units);
    let len = units.len();
    pool(2).install(|| {
        let mut xs = vec![1.0_f32; len];
        let mut short: Vec<u64> = vec![];
        assert_eq!(
            st.par_forward_with_mask(Mode::Train, &mut xs, &mut short, Keyed::new(1, 0)),
            Err(Error::MaskTooShort {
                needed: 1,
                found: 0
            })
        );
        let mut wrong = vec![1.0_f32; len - 1];
        assert!(matches!(
            st.par_forward(Mode::Train, &mut wrong, Keyed::new(1, 0)),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(matches!(
            st.par_forward(Mode::Train, &mut xs, Keyed::new(1, u64::MAX - 2)),
            Err(Error::PositionOverflow { .. })
        ));
        let mut out = vec![0.0_f32; len + 1];
        assert!(matches!(
            st.par_forward_to(Mode::Train, &xs, &mut out, Keyed::new(1, 0)),
            Err(Error::LengthMismatch { .. })
        ));
        let d = Dropout::new(0.5).unwrap();
        let big = 300_000;
        let mut mask = vec![0xAA_u64; mask_words(big) - 1];
        let mut ys = vec![1.0_f32; big];
        assert!(matches!(
            d.par_forward_with_mask(Mode::Train, &mut ys, &mut mask, Keyed::new(1, 0)),
            Err(Error::MaskTooShort { .. })
        ));
        assert!(matches!(
            d.par_apply_mask(Mode::Train, &mut ys, &mask),
            Err(Error::MaskTooShort { .. })
        ));
        assert!(xs.iter().chain(&ys).all(|&x| x == 1.0));
        assert!(mask.iter().all(|&w| w == 0xAA));
        assert!(out.iter().all(|&x| x == 0.0));
    });
}
