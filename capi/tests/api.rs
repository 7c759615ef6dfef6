//! Every C function gives what the Rust call it wraps gives, for each
//! element type, element-wise and structured; and the checks the C API
//! adds fail before anything is written. (`capi.c` checks the same from C.)

use bitdrop::half::{bf16, f16};
use bitdrop::{Dropout, Element, Keyed, Mode, Residual, Units, mask_words};
use bitdrop_capi::*;
use core::ffi::c_void;
use core::ptr::{null, null_mut};

const KEY: BitdropKey = BitdropKey {
    seed: 11,
    offset: 4090,
};
const P: f32 = 0.3;
/// Elements per call; under Miri, which checks the unsafe code, fewer
/// (still past a word).
const N: usize = if cfg!(miri) { 70 } else { 700 };

fn keyed() -> Keyed {
    Keyed::new(KEY.seed, KEY.offset)
}

/// Data of `n` elements of `E` from a fixed pattern, with sign changes.
fn data<E: Element + From<i8>>(n: usize) -> Vec<E> {
    (0..n)
        .map(|i| E::from(((i % 200) as i32 - 100) as i8))
        .collect()
}

trait Bits: Element + From<i8> + PartialEq + core::fmt::Debug {
    const DTYPE: BitdropDtype;
}
impl Bits for f32 {
    const DTYPE: BitdropDtype = BITDROP_F32;
}
impl Bits for bf16 {
    const DTYPE: BitdropDtype = BITDROP_BF16;
}
impl Bits for f16 {
    const DTYPE: BitdropDtype = BITDROP_F16;
}

fn ptr<E>(v: &[E]) -> *const c_void {
    v.as_ptr().cast()
}
fn mut_ptr<E>(v: &mut [E]) -> *mut c_void {
    v.as_mut_ptr().cast()
}

fn same_as_rust<E: Bits>(units: Option<BitdropUnits>) {
    let n = N;
    let u = units.map_or(Units::elements(n), |u| {
        Units::new(u.outer, u.shared, u.inner, u.run).unwrap()
    });
    let units_ptr = units.as_ref().map_or(null(), |u| u as *const BitdropUnits);
    let op = Dropout::new(P).unwrap().structured(u);
    let words = mask_words(u.count());
    let xs = data::<E>(n);
    let bias = data::<E>(7);
    let call = |mode| {
        if mode == BITDROP_TRAIN {
            Mode::Train
        } else {
            Mode::Eval
        }
    };
    for mode in [BITDROP_TRAIN, BITDROP_EVAL] {
        let m = call(mode);
        // forward, forward_with_mask, fill_mask
        let (mut want, mut want_mask) = (xs.clone(), vec![0u64; words]);
        op.forward_with_mask(m, &mut want, &mut want_mask, keyed())
            .unwrap();
        let mut got = xs.clone();
        let s = unsafe { bitdrop_forward(E::DTYPE, P, mode, units_ptr, KEY, mut_ptr(&mut got), n) };
        assert_eq!((s, &got), (BitdropStatus::Ok, &want));
        let (mut got, mut mask) = (xs.clone(), vec![0u64; words]);
        let s = unsafe {
            bitdrop_forward_with_mask(
                E::DTYPE,
                P,
                mode,
                units_ptr,
                KEY,
                mut_ptr(&mut got),
                n,
                mask.as_mut_ptr(),
                words,
            )
        };
        assert_eq!((s, &got, &mask), (BitdropStatus::Ok, &want, &want_mask));
        let mut filled = vec![0u64; words];
        let s =
            unsafe { bitdrop_fill_mask(P, mode, units_ptr, KEY, n, filled.as_mut_ptr(), words) };
        assert_eq!((s, &filled), (BitdropStatus::Ok, &want_mask));
        // out of place
        let mut out = vec![E::from(0); n];
        let s = unsafe {
            bitdrop_forward_to(
                E::DTYPE,
                P,
                mode,
                units_ptr,
                KEY,
                ptr(&xs),
                n,
                mut_ptr(&mut out),
                n,
            )
        };
        assert_eq!((s, &out), (BitdropStatus::Ok, &want));
        let (mut out, mut mask) = (vec![E::from(0); n], vec![0u64; words]);
        let s = unsafe {
            bitdrop_forward_to_with_mask(
                E::DTYPE,
                P,
                mode,
                units_ptr,
                KEY,
                ptr(&xs),
                n,
                mut_ptr(&mut out),
                n,
                mask.as_mut_ptr(),
                words,
            )
        };
        assert_eq!((s, &out, &mask), (BitdropStatus::Ok, &want, &want_mask));
        // apply a given mask
        let mut got = xs.clone();
        let s = unsafe {
            bitdrop_apply_mask(
                E::DTYPE,
                P,
                mode,
                units_ptr,
                mut_ptr(&mut got),
                n,
                want_mask.as_ptr(),
                words,
            )
        };
        assert_eq!((s, &got), (BitdropStatus::Ok, &want));
        let mut out = vec![E::from(0); n];
        let s = unsafe {
            bitdrop_apply_mask_to(
                E::DTYPE,
                P,
                mode,
                units_ptr,
                ptr(&xs),
                n,
                mut_ptr(&mut out),
                n,
                want_mask.as_ptr(),
                words,
            )
        };
        assert_eq!((s, &out), (BitdropStatus::Ok, &want));
        // backward
        let mut got = xs.clone();
        let s =
            unsafe { bitdrop_backward(E::DTYPE, P, mode, units_ptr, KEY, mut_ptr(&mut got), n) };
        assert_eq!((s, &got), (BitdropStatus::Ok, &want));
        let mut out = vec![E::from(0); n];
        let s = unsafe {
            bitdrop_backward_to(
                E::DTYPE,
                P,
                mode,
                units_ptr,
                KEY,
                ptr(&xs),
                n,
                mut_ptr(&mut out),
                n,
            )
        };
        assert_eq!((s, &out), (BitdropStatus::Ok, &want));
        // fused, in each of the three places, with and without a bias
        let residual = data::<E>(n + 3)[3..].to_vec();
        for b in [None, Some(&bias[..])] {
            let (mut want, mut want_mask) = (vec![E::from(0); n], vec![0u64; words]);
            let io = Residual::Into {
                x: &xs,
                residual: &residual,
                out: &mut want,
            };
            op.residual_add_with_mask(m, io, b, &mut want_mask, keyed())
                .unwrap();
            let (bp, bl) = b.map_or((null(), 0), |b| (ptr(b), b.len()));
            for place in 0..3 {
                let (mut x, mut r, mut out) = (xs.clone(), residual.clone(), vec![E::from(0); n]);
                let (xp, rp) = (mut_ptr(&mut x), mut_ptr(&mut r));
                let op_ = [xp, rp, mut_ptr(&mut out)][place];
                let s = unsafe {
                    bitdrop_residual_add(E::DTYPE, P, mode, units_ptr, KEY, xp, rp, op_, n, bp, bl)
                };
                let got = [&x, &r, &out][place];
                assert_eq!((s, got), (BitdropStatus::Ok, &want), "place {place}");
                let (mut x, mut r, mut out) = (xs.clone(), residual.clone(), vec![E::from(0); n]);
                let mut mask = vec![0u64; words];
                let (xp, rp) = (mut_ptr(&mut x), mut_ptr(&mut r));
                let op_ = [xp, rp, mut_ptr(&mut out)][place];
                let s = unsafe {
                    bitdrop_residual_add_with_mask(
                        E::DTYPE,
                        P,
                        mode,
                        units_ptr,
                        KEY,
                        xp,
                        rp,
                        op_,
                        n,
                        bp,
                        bl,
                        mask.as_mut_ptr(),
                        words,
                    )
                };
                let got = [&x, &r, &out][place];
                assert_eq!(
                    (s, got, &mask),
                    (BitdropStatus::Ok, &want, &want_mask),
                    "place {place}"
                );
            }
        }
    }
}

#[test]
fn every_function_equals_the_rust_call() {
    let channels = BitdropUnits {
        outer: 1,
        shared: 1,
        inner: 14,
        run: N / 14,
    };
    let time_steps = BitdropUnits {
        outer: 1,
        shared: 7,
        inner: N / 7,
        run: 1,
    };
    if cfg!(miri) {
        // The unsafe code is the same for every shape and 16-bit type:
        // f32 element-wise, bf16 on channels.
        same_as_rust::<f32>(None);
        same_as_rust::<bf16>(Some(channels));
        return;
    }
    for units in [None, Some(channels), Some(time_steps)] {
        same_as_rust::<f32>(units);
        same_as_rust::<bf16>(units);
        same_as_rust::<f16>(units);
    }
}

#[test]
fn helpers() {
    assert_eq!(bitdrop_mask_words(0), 0);
    assert_eq!(bitdrop_mask_words(65), 2);
    assert_eq!(bitdrop_scale(0.5), 2.0);
    assert_eq!(bitdrop_scale(0.1), Dropout::new(0.1).unwrap().scale());
    assert!(bitdrop_scale(-0.5).is_nan());
    let mut out = 0;
    let path = [3, 41];
    assert_eq!(
        unsafe { bitdrop_derive_seed(7, path.as_ptr(), 2, &mut out) },
        BitdropStatus::Ok
    );
    assert_eq!(out, bitdrop::derive_seed(7, &path));
    assert_eq!(
        unsafe { bitdrop_derive_seed(7, null(), 0, &mut out) },
        BitdropStatus::Ok
    );
    assert_eq!(out, bitdrop::derive_seed(7, &[]));
    assert_eq!(
        unsafe { bitdrop_derive_seed(7, null(), 1, &mut out) },
        BitdropStatus::NullPointer
    );
    assert_eq!(
        unsafe { bitdrop_derive_seed(7, null(), 0, null_mut()) },
        BitdropStatus::NullPointer
    );
    for code in 0..=14 {
        let message = unsafe { core::ffi::CStr::from_ptr(bitdrop_status_message(code)) };
        assert_ne!(message.to_str().unwrap(), "unknown status", "{code}");
    }
    let unknown = unsafe { core::ffi::CStr::from_ptr(bitdrop_status_message(15)) };
    assert_eq!(unknown.to_str().unwrap(), "unknown status");
}

#[test]
fn the_checks_of_the_c_api_write_nothing() {
    // Aligned for u64, so that mask words over the data overlap rather than
    // misalign.
    #[repr(C, align(8))]
    struct Aligned([f32; 256]);
    let xs = data::<f32>(256);
    let mut store = Box::new(Aligned([0.0; 256]));
    store.0.copy_from_slice(&xs);
    let mut mask = [0u64; 4];
    let base = mut_ptr(&mut store.0);
    let f = BITDROP_F32;
    let fused = |x: *const c_void,
                 r: *const c_void,
                 out: *mut c_void,
                 bias: *const c_void,
                 bias_len| unsafe {
        bitdrop_residual_add(
            f,
            P,
            BITDROP_TRAIN,
            null(),
            KEY,
            x,
            r,
            out,
            64,
            bias,
            bias_len,
        )
    };
    let at = |k: usize| unsafe { base.cast::<f32>().add(k).cast::<c_void>() };
    let cases = [
        (
            unsafe { bitdrop_forward(f, P, BITDROP_TRAIN, null(), KEY, null_mut(), 1) },
            BitdropStatus::NullPointer,
        ),
        (
            unsafe {
                bitdrop_forward(
                    f,
                    P,
                    BITDROP_TRAIN,
                    null(),
                    KEY,
                    base.cast::<u8>().add(2).cast(),
                    4,
                )
            },
            BitdropStatus::Misaligned,
        ),
        (
            unsafe {
                bitdrop_forward(
                    BITDROP_BF16,
                    P,
                    BITDROP_TRAIN,
                    null(),
                    KEY,
                    base.cast::<u8>().add(1).cast(),
                    4,
                )
            },
            BitdropStatus::Misaligned,
        ),
        (
            unsafe { bitdrop_forward(f, P, BITDROP_TRAIN, null(), KEY, base, usize::MAX / 4 + 1) },
            BitdropStatus::TooLong,
        ),
        (
            unsafe { bitdrop_forward_to(f, P, BITDROP_TRAIN, null(), KEY, at(0), 64, at(63), 64) },
            BitdropStatus::Overlap,
        ),
        (
            unsafe { bitdrop_forward_to(f, P, BITDROP_TRAIN, null(), KEY, at(0), 64, at(0), 64) },
            BitdropStatus::Overlap,
        ),
        (
            unsafe { bitdrop_backward_to(f, P, BITDROP_TRAIN, null(), KEY, at(10), 64, at(0), 64) },
            BitdropStatus::Overlap,
        ),
        (
            unsafe {
                bitdrop_apply_mask(
                    f,
                    P,
                    BITDROP_TRAIN,
                    null(),
                    at(0),
                    64,
                    base.cast::<u64>().add(1),
                    1,
                )
            },
            BitdropStatus::Overlap,
        ),
        (
            unsafe {
                bitdrop_apply_mask_to(
                    f,
                    P,
                    BITDROP_TRAIN,
                    null(),
                    at(0),
                    64,
                    at(64),
                    64,
                    base.cast::<u64>().add(40),
                    1,
                )
            },
            BitdropStatus::Overlap,
        ),
        (
            unsafe {
                bitdrop_forward_to_with_mask(
                    f,
                    P,
                    BITDROP_TRAIN,
                    null(),
                    KEY,
                    at(0),
                    64,
                    at(128),
                    64,
                    base.cast::<u64>().add(10),
                    1,
                )
            },
            BitdropStatus::Overlap,
        ),
        (
            unsafe { bitdrop_forward(f, P, 2, null(), KEY, base, 64) },
            BitdropStatus::InvalidMode,
        ),
        (
            unsafe { bitdrop_forward(3, P, BITDROP_TRAIN, null(), KEY, base, 64) },
            BitdropStatus::InvalidDtype,
        ),
        (
            unsafe {
                bitdrop_fill_mask(
                    P,
                    BITDROP_TRAIN,
                    &BitdropUnits {
                        outer: 1,
                        shared: 2,
                        inner: 3,
                        run: 4,
                    },
                    KEY,
                    25,
                    mask.as_mut_ptr(),
                    4,
                )
            },
            BitdropStatus::ShapeMismatch,
        ),
        // out partly over x, over the residual, over the bias; x over the residual when writing into x
        (
            fused(at(0), at(128), at(32), null(), 0),
            BitdropStatus::Overlap,
        ),
        (
            fused(at(0), at(128), at(100), null(), 0),
            BitdropStatus::Overlap,
        ),
        (
            fused(at(0), at(64), at(128), at(130), 4),
            BitdropStatus::Overlap,
        ),
        (
            fused(at(0), at(32), at(0), null(), 0),
            BitdropStatus::Overlap,
        ),
        (
            fused(at(0), at(64), at(128), null(), 5),
            BitdropStatus::NullPointer,
        ),
        (
            unsafe {
                bitdrop_residual_add_with_mask(
                    f,
                    P,
                    BITDROP_TRAIN,
                    null(),
                    KEY,
                    at(0),
                    at(64),
                    at(128),
                    64,
                    null(),
                    0,
                    base.cast::<u64>().add(1),
                    1,
                )
            },
            BitdropStatus::Overlap,
        ),
    ];
    for (i, (got, want)) in cases.into_iter().enumerate() {
        assert_eq!(got, want, "case {i}");
    }
    assert_eq!(&store.0[..], &xs[..]);
    assert_eq!(mask, [0; 4]);
    // Reading overlapping inputs is fine when the output overlaps neither.
    assert_eq!(fused(at(0), at(16), at(128), at(0), 8), BitdropStatus::Ok);
    assert_eq!(fused(at(0), at(0), at(128), null(), 0), BitdropStatus::Ok);
}

/// The units may sit at any address; a bias of length 0 is no bias,
/// whatever its pointer; a misaligned mask is an error.
#[test]
fn units_bias_and_mask_at_any_address() {
    let units = BitdropUnits {
        outer: 1,
        shared: 1,
        inner: 7,
        run: 10,
    };
    let mut bytes = [0u8; size_of::<BitdropUnits>() + 1];
    // SAFETY: the buffer has room for one `BitdropUnits` from byte 1.
    unsafe {
        bytes
            .as_mut_ptr()
            .add(1)
            .cast::<BitdropUnits>()
            .write_unaligned(units)
    };
    let unaligned = unsafe { bytes.as_ptr().add(1).cast::<BitdropUnits>() };
    let xs = data::<f32>(70);
    let (mut a, mut b) = (xs.clone(), xs.clone());
    let f = BITDROP_F32;
    let s = unsafe { bitdrop_forward(f, P, BITDROP_TRAIN, &units, KEY, mut_ptr(&mut a), 70) };
    assert_eq!(s, BitdropStatus::Ok);
    let s = unsafe { bitdrop_forward(f, P, BITDROP_TRAIN, unaligned, KEY, mut_ptr(&mut b), 70) };
    assert_eq!((s, &b), (BitdropStatus::Ok, &a));

    let residual = data::<f32>(71)[1..].to_vec();
    let (mut none, mut empty) = (vec![0.0; 70], vec![0.0; 70]);
    let (x, r) = (ptr(&xs), ptr(&residual));
    let s = unsafe {
        bitdrop_residual_add(
            f,
            P,
            BITDROP_TRAIN,
            null(),
            KEY,
            x,
            r,
            mut_ptr(&mut none),
            70,
            null(),
            0,
        )
    };
    assert_eq!(s, BitdropStatus::Ok);
    let s = unsafe {
        bitdrop_residual_add(
            f,
            P,
            BITDROP_TRAIN,
            null(),
            KEY,
            x,
            r,
            mut_ptr(&mut empty),
            70,
            x,
            0,
        )
    };
    assert_eq!((s, &empty), (BitdropStatus::Ok, &none));

    let mut words = [0u64; 3];
    let odd = unsafe { words.as_mut_ptr().cast::<u8>().add(4).cast::<u64>() };
    let mut ys = xs.clone();
    let s = unsafe {
        bitdrop_forward_with_mask(
            f,
            P,
            BITDROP_TRAIN,
            null(),
            KEY,
            mut_ptr(&mut ys),
            70,
            odd,
            2,
        )
    };
    assert_eq!((s, &ys, words), (BitdropStatus::Misaligned, &xs, [0; 3]));
}

/// Units without elements: nothing to decide without a mask (at once,
/// even for `2^62` units); a unit count past `size_t` is an error.
#[test]
fn units_without_elements() {
    let many = BitdropUnits {
        outer: 1,
        shared: 0,
        inner: 1 << 62,
        run: 1,
    };
    let s = unsafe { bitdrop_forward(BITDROP_F32, P, BITDROP_TRAIN, &many, KEY, null_mut(), 0) };
    assert_eq!(s, BitdropStatus::Ok);
    let overflow = BitdropUnits {
        outer: usize::MAX,
        shared: 0,
        inner: 2,
        run: 1,
    };
    let s =
        unsafe { bitdrop_forward(BITDROP_F32, P, BITDROP_TRAIN, &overflow, KEY, null_mut(), 0) };
    assert_eq!(s, BitdropStatus::InvalidShape);
}
