//! The C ABI of [bitdrop]: exact, allocation-free inverted dropout over
//! `float`, bf16 and f16 buffers, for C and C++ programs.
//!
//! The header, `include/bitdrop.h`, is generated from this file by
//! cbindgen; `capi/README.md` shows how to build and link the library.
//!
//! # The calls
//!
//! Every operation of bitdrop's [`Structured`] (and so of its [`Dropout`],
//! the element-wise case) has a function here, taking:
//!
//! - `dtype`: [`BITDROP_F32`], [`BITDROP_BF16`] or [`BITDROP_F16`], the
//!   element type of the data buffers (`float`, or the 16-bit patterns of
//!   bf16 and IEEE half in `uint16_t`);
//! - `p`, the drop probability, and `mode`, [`BITDROP_TRAIN`] or
//!   [`BITDROP_EVAL`];
//! - `units`: `NULL` for element-wise dropout, or a [`BitdropUnits`] for
//!   the structured forms (whole channels, rows, samples, time steps);
//! - a [`BitdropKey`] (seed and stream position of the first unit) for the
//!   calls that draw decisions;
//! - buffers as `(pointer, length)` pairs, lengths counted in elements
//!   (in 64-bit words for masks).
//!
//! Each returns a [`BitdropStatus`]: [`BitdropStatus::Ok`], or the first
//! problem found, in which case nothing has been written. The results are
//! bitdrop's, bit for bit: the same key gives the same mask in C, in Rust,
//! on every target and for every element type.
//!
//! # What the library checks, and what remains the caller's duty
//!
//! Checked, with an error code and nothing written: a null pointer with a
//! non-zero length ([`BitdropStatus::NullPointer`]); a pointer not aligned
//! for its element type ([`BitdropStatus::Misaligned`]); a length whose
//! bytes exceed `PTRDIFF_MAX` or run past the end of the address space
//! ([`BitdropStatus::TooLong`]); a buffer that is written and overlaps
//! another buffer of the call ([`BitdropStatus::Overlap`]), except where a
//! function allows it by name (in place); an unknown mode or type; and
//! everything bitdrop itself checks (probability, lengths, shapes, mask
//! size, stream positions past `2^64 - 1`).
//!
//! The caller's duty, which no library can check: each non-null pointer
//! points to at least its length of elements (or words), readable, and
//! writable where the function writes; output buffers hold initialized
//! memory (any values: they are overwritten without being read); during
//! the call no other thread accesses a buffer the call writes or writes a
//! buffer it reads. A null pointer with length 0 is an empty buffer. The
//! header carries this contract at its top, for C readers.
//!
//! No function allocates, panics or unwinds. Without its default `std`
//! feature the crate is `no_std` and needs no allocator.

#![no_std]
#![deny(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

use core::ffi::{CStr, c_char, c_int, c_void};
use core::mem::{align_of, size_of};

use bitdrop::half::{bf16, f16};
use bitdrop::{Dropout, Element, Error, Keyed, Mode, Residual, Structured, Units};

/// The outcome of a call. On any value but `BITDROP_STATUS_OK`, nothing
/// was written.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitdropStatus {
    /// Success.
    Ok = 0,
    /// A pointer is null and its length is not 0.
    NullPointer = 1,
    /// A pointer is not aligned for its element type (`_Alignof(float)`,
    /// `_Alignof(uint16_t)`, `_Alignof(uint64_t)` for mask words).
    Misaligned = 2,
    /// A buffer's size in bytes exceeds `PTRDIFF_MAX`, or it runs past the
    /// end of the address space.
    TooLong = 3,
    /// A buffer the call writes overlaps another buffer of the call.
    Overlap = 4,
    /// `mode` is neither `BITDROP_TRAIN` nor `BITDROP_EVAL`.
    InvalidMode = 5,
    /// `dtype` is not one of `BITDROP_F32`, `BITDROP_BF16`, `BITDROP_F16`.
    InvalidDtype = 6,
    /// `p` is NaN, infinite or outside `[0, 1]`.
    InvalidProbability = 7,
    /// An output's length differs from its input's.
    LengthMismatch = 8,
    /// The mask has fewer words than `bitdrop_mask_words(outer * inner)`
    /// (of `len` when element-wise) needs.
    MaskTooShort = 9,
    /// The data's length differs from the element count of its units.
    ShapeMismatch = 10,
    /// The units' element count or unit count (`outer * inner`) overflows
    /// `size_t`.
    InvalidShape = 11,
    /// The bias's length does not divide the data's.
    BiasMismatch = 12,
    /// The key's offset plus the call's units run past position
    /// `2^64 - 1` of the stream.
    PositionOverflow = 13,
    /// An error of a newer bitdrop that this C API does not name yet.
    Other = 14,
}

/// Training or evaluation, one of `BITDROP_TRAIN` and `BITDROP_EVAL`.
pub type BitdropMode = u32;
/// Drop with probability `p`, scale the kept elements by `1 / (1 - p)`.
pub const BITDROP_TRAIN: BitdropMode = 0;
/// The identity: data unchanged bit for bit, masks all kept, no decision
/// drawn.
pub const BITDROP_EVAL: BitdropMode = 1;

/// The element type of the data buffers.
pub type BitdropDtype = u32;
/// `float` (IEEE binary32).
pub const BITDROP_F32: BitdropDtype = 0;
/// bfloat16, as its 16-bit pattern in a `uint16_t`.
pub const BITDROP_BF16: BitdropDtype = 1;
/// IEEE binary16, as its 16-bit pattern in a `uint16_t`.
pub const BITDROP_F16: BitdropDtype = 2;

/// A position in bitdrop's keyed mask stream: unit `i` of a call is decided
/// by position `offset + i` of the stream `seed`. Shards of one tensor
/// share the seed and pass the offset of their first unit; the backward
/// pass regenerates the forward mask from the same key.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BitdropKey {
    /// The stream: derive one per layer, step and sample with
    /// `bitdrop_derive_seed()`.
    pub seed: u64,
    /// The stream position of the call's first unit.
    pub offset: u64,
}

/// Which elements share one keep decision: the data is a row-major
/// `[outer, shared, inner, run]` array, and element
/// `((o * shared + s) * inner + i) * run + r` belongs to unit
/// `o * inner + i`. Element-wise dropout of `n` elements is
/// `{1, 1, n, 1}` (or `NULL`); channel dropout of `[N, C, H, W]` is
/// `{1, 1, N * C, H * W}`; channels last `[N, H, W, C]` is
/// `{N, H * W, C, 1}`; one mask for every step of `[T, B, H]` is
/// `{1, T, B * H, 1}`; one decision per sample of `[N, D]` is
/// `{1, 1, N, D}`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BitdropUnits {
    /// Leading axes, each index with its own units.
    pub outer: usize,
    /// The axis every unit spans (broadcast).
    pub shared: usize,
    /// Units per outer index.
    pub inner: usize,
    /// Consecutive elements of one unit.
    pub run: usize,
}

impl BitdropStatus {
    /// Every status, in the order of their codes.
    const ALL: [BitdropStatus; 15] = {
        use BitdropStatus::*;
        [
            Ok,
            NullPointer,
            Misaligned,
            TooLong,
            Overlap,
            InvalidMode,
            InvalidDtype,
            InvalidProbability,
            LengthMismatch,
            MaskTooShort,
            ShapeMismatch,
            InvalidShape,
            BiasMismatch,
            PositionOverflow,
            Other,
        ]
    };

    /// A short English description, as `bitdrop_status_message()` gives it.
    const fn message(self) -> &'static CStr {
        match self {
            BitdropStatus::Ok => c"ok",
            BitdropStatus::NullPointer => c"a pointer is null and its length is not 0",
            BitdropStatus::Misaligned => c"a pointer is not aligned for its element type",
            BitdropStatus::TooLong => {
                c"a buffer is larger than PTRDIFF_MAX bytes or wraps the address space"
            }
            BitdropStatus::Overlap => {
                c"a buffer the call writes overlaps another buffer of the call"
            }
            BitdropStatus::InvalidMode => c"the mode is neither BITDROP_TRAIN nor BITDROP_EVAL",
            BitdropStatus::InvalidDtype => {
                c"the element type is not BITDROP_F32, BITDROP_BF16 or BITDROP_F16"
            }
            BitdropStatus::InvalidProbability => c"the drop probability is not in [0, 1]",
            BitdropStatus::LengthMismatch => c"an output's length differs from its input's",
            BitdropStatus::MaskTooShort => c"the mask has too few words",
            BitdropStatus::ShapeMismatch => {
                c"the data's length differs from its units' element count"
            }
            BitdropStatus::InvalidShape => c"the units' element or unit count overflows size_t",
            BitdropStatus::BiasMismatch => c"the bias's length does not divide the data's",
            BitdropStatus::PositionOverflow => c"the call runs past the end of the keyed stream",
            BitdropStatus::Other => c"an error this version of the C API does not name",
        }
    }
}

type Outcome = Result<(), BitdropStatus>;

impl From<Error> for BitdropStatus {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidProbability { .. } => BitdropStatus::InvalidProbability,
            Error::LengthMismatch { .. } => BitdropStatus::LengthMismatch,
            Error::MaskTooShort { .. } => BitdropStatus::MaskTooShort,
            Error::ShapeMismatch { .. } => BitdropStatus::ShapeMismatch,
            Error::InvalidShape { .. } => BitdropStatus::InvalidShape,
            Error::BiasMismatch { .. } => BitdropStatus::BiasMismatch,
            Error::PositionOverflow { .. } => BitdropStatus::PositionOverflow,
            _ => BitdropStatus::Other,
        }
    }
}

/// The status of a call's body: its first error, or `Ok`.
fn status(body: impl FnOnce() -> Outcome) -> BitdropStatus {
    body().err().unwrap_or(BitdropStatus::Ok)
}

fn mode(mode: BitdropMode) -> Result<Mode, BitdropStatus> {
    match mode {
        BITDROP_TRAIN => Ok(Mode::Train),
        BITDROP_EVAL => Ok(Mode::Eval),
        _ => Err(BitdropStatus::InvalidMode),
    }
}

/// The configuration of a call on `len` elements: `p` and the units
/// (element-wise when `units` is null).
///
/// # Safety
///
/// `units` is null or points to a readable `BitdropUnits`, aligned or not.
unsafe fn config(
    p: f32,
    units: *const BitdropUnits,
    len: usize,
) -> Result<Structured, BitdropStatus> {
    let dropout = Dropout::new(p)?;
    let units = if units.is_null() {
        Units::elements(len)
    } else {
        // SAFETY: non-null, readable (the caller's duty); an unaligned read
        // needs no alignment.
        let u = unsafe { units.read_unaligned() };
        Units::new(u.outer, u.shared, u.inner, u.run)?
    };
    Ok(dropout.structured(units))
}

/// A buffer of `len` elements of `T` at `ptr`: its address range, once
/// checked for null, alignment and size.
#[derive(Clone, Copy)]
struct Buffer<T> {
    ptr: *mut T,
    len: usize,
}

impl<T> Buffer<T> {
    fn new(ptr: *const T, len: usize) -> Result<Self, BitdropStatus> {
        let ptr = ptr.cast_mut();
        if len == 0 {
            return Ok(Buffer {
                ptr: core::ptr::NonNull::dangling().as_ptr(),
                len,
            });
        }
        if ptr.is_null() {
            return Err(BitdropStatus::NullPointer);
        }
        if !(ptr as usize).is_multiple_of(align_of::<T>()) {
            return Err(BitdropStatus::Misaligned);
        }
        let bytes = len
            .checked_mul(size_of::<T>())
            .filter(|&b| b <= isize::MAX as usize);
        match bytes.and_then(|b| (ptr as usize).checked_add(b)) {
            Some(_) => Ok(Buffer { ptr, len }),
            None => Err(BitdropStatus::TooLong),
        }
    }

    /// Its bytes, `start..end`.
    fn range(&self) -> (usize, usize) {
        let start = self.ptr as usize;
        (start, start + self.len * size_of::<T>())
    }

    /// # Safety
    ///
    /// `ptr` points to `len` valid elements that nothing writes while the
    /// slice lives.
    unsafe fn slice<'a>(self) -> &'a [T] {
        // SAFETY: non-null and aligned (checked), size within isize::MAX
        // (checked), valid for reads (the caller's duty).
        unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// # Safety
    ///
    /// As [`slice`](Buffer::slice), writable, and no other reference to it
    /// lives while this one does.
    unsafe fn slice_mut<'a>(self) -> &'a mut [T] {
        // SAFETY: as above; unique (no overlap with the call's other
        // buffers, checked by the caller of this function).
        unsafe { core::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

/// Fails with `Overlap` if `written` overlaps any of `others`.
fn disjoint<T>(written: &Buffer<T>, others: &[(usize, usize)]) -> Outcome {
    let (a, b) = written.range();
    if others.iter().any(|&(c, d)| a < d && c < b) {
        return Err(BitdropStatus::Overlap);
    }
    Ok(())
}

/// Runs `$body` with `$E` the element type named by `$dtype`.
macro_rules! by_dtype {
    ($dtype:expr, $E:ident => $body:expr) => {
        match $dtype {
            BITDROP_F32 => {
                type $E = f32;
                $body
            }
            BITDROP_BF16 => {
                type $E = bf16;
                $body
            }
            BITDROP_F16 => {
                type $E = f16;
                $body
            }
            _ => Err(BitdropStatus::InvalidDtype),
        }
    };
}

fn key(key: BitdropKey) -> Keyed {
    Keyed::new(key.seed, key.offset)
}

/// The words of a mask of `len` units: `ceil(len / 64)`. Unit `i` is bit
/// `i % 64` of word `i / 64`, 1 if kept; the bits past `len` in the last
/// word are 0.
#[unsafe(no_mangle)]
pub extern "C" fn bitdrop_mask_words(len: usize) -> usize {
    bitdrop::mask_words(len)
}

/// Writes to `*out` a seed derived from `seed` and the `path_len` integers
/// at `path` (layer, step, Monte Carlo pass...), as bitdrop's
/// `derive_seed`: distinct paths give independent streams.
///
/// # Safety
///
/// `path` points to `path_len` readable `uint64_t` (or is null with
/// `path_len` 0); `out` points to a writable `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bitdrop_derive_seed(
    seed: u64,
    path: *const u64,
    path_len: usize,
    out: *mut u64,
) -> BitdropStatus {
    status(|| {
        let path = Buffer::new(path, path_len)?;
        let out = Buffer::new(out, 1)?;
        // SAFETY: checked above; valid memory is the caller's duty.
        let derived = bitdrop::derive_seed(seed, unsafe { path.slice() });
        // SAFETY: as above: non-null and aligned (checked), writable.
        unsafe { out.ptr.write(derived) };
        Ok(())
    })
}

/// The factor `1 / (1 - p)` of kept elements, as bitdrop computes it
/// (in double, rounded once to float; `+inf` at `p == 1`), or NaN if `p`
/// is not a probability.
#[unsafe(no_mangle)]
pub extern "C" fn bitdrop_scale(p: f32) -> f32 {
    Dropout::new(p).map_or(f32::NAN, |d| d.scale())
}

/// A short English description of a status, as a static NUL-terminated
/// string; "unknown status" for values that are not a `BitdropStatus`.
#[unsafe(no_mangle)]
pub extern "C" fn bitdrop_status_message(status: c_int) -> *const c_char {
    BitdropStatus::ALL
        .into_iter()
        .find(|s| *s as c_int == status)
        .map_or(c"unknown status", BitdropStatus::message)
        .as_ptr()
}

/// Dropout in place on the `len` elements at `xs`.
///
/// # Safety
///
/// The caller's duty at the top of the header (and of the crate
/// documentation): every non-null pointer valid for its length; `units`
/// null or pointing to a `BitdropUnits`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bitdrop_forward(
    dtype: BitdropDtype,
    p: f32,
    mode: BitdropMode,
    units: *const BitdropUnits,
    key: BitdropKey,
    xs: *mut c_void,
    len: usize,
) -> BitdropStatus {
    status(|| {
        by_dtype!(dtype, E => {
            let xs = Buffer::new(xs.cast::<E>(), len)?;
            let (mode, op) = (self::mode(mode)?, unsafe { config(p, units, len)? });
            // SAFETY: checked; the only buffer of the call.
            Ok(op.forward(mode, unsafe { xs.slice_mut() }, self::key(key))?)
        })
    })
}

/// Dropout from the `len` elements at `xs` into the `out_len` at `out`,
/// which must not overlap.
///
/// # Safety
///
/// As `bitdrop_forward()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bitdrop_forward_to(
    dtype: BitdropDtype,
    p: f32,
    mode: BitdropMode,
    units: *const BitdropUnits,
    key: BitdropKey,
    xs: *const c_void,
    len: usize,
    out: *mut c_void,
    out_len: usize,
) -> BitdropStatus {
    status(|| {
        by_dtype!(dtype, E => {
            let (xs, out) = (Buffer::new(xs.cast::<E>(), len)?, Buffer::new(out.cast::<E>(), out_len)?);
            disjoint(&out, &[xs.range()])?;
            let (mode, op) = (self::mode(mode)?, unsafe { config(p, units, len)? });
            // SAFETY: checked, and `out` overlaps nothing.
            let (xs, out) = unsafe { (xs.slice(), out.slice_mut()) };
            Ok(op.forward_to(mode, xs, out, self::key(key))?)
        })
    })
}

/// `bitdrop_forward()` that also writes the mask (one bit per unit, see
/// `bitdrop_mask_words()`) to the `mask_words` words at `mask`.
///
/// # Safety
///
/// As `bitdrop_forward()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bitdrop_forward_with_mask(
    dtype: BitdropDtype,
    p: f32,
    mode: BitdropMode,
    units: *const BitdropUnits,
    key: BitdropKey,
    xs: *mut c_void,
    len: usize,
    mask: *mut u64,
    mask_words: usize,
) -> BitdropStatus {
    status(|| {
        by_dtype!(dtype, E => {
            let (xs, mask) = (Buffer::new(xs.cast::<E>(), len)?, Buffer::new(mask, mask_words)?);
            disjoint(&mask, &[xs.range()])?;
            let (mode, op) = (self::mode(mode)?, unsafe { config(p, units, len)? });
            // SAFETY: checked, and the two overlap nowhere.
            let (xs, mask) = unsafe { (xs.slice_mut(), mask.slice_mut()) };
            Ok(op.forward_with_mask(mode, xs, mask, self::key(key))?)
        })
    })
}

/// `bitdrop_forward_to()` that also writes the mask.
///
/// # Safety
///
/// As `bitdrop_forward()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bitdrop_forward_to_with_mask(
    dtype: BitdropDtype,
    p: f32,
    mode: BitdropMode,
    units: *const BitdropUnits,
    key: BitdropKey,
    xs: *const c_void,
    len: usize,
    out: *mut c_void,
    out_len: usize,
    mask: *mut u64,
    mask_words: usize,
) -> BitdropStatus {
    status(|| {
        by_dtype!(dtype, E => {
            let xs = Buffer::new(xs.cast::<E>(), len)?;
            let (out, mask) = (Buffer::new(out.cast::<E>(), out_len)?, Buffer::new(mask, mask_words)?);
            disjoint(&out, &[xs.range(), mask.range()])?;
            disjoint(&mask, &[xs.range()])?;
            let (mode, op) = (self::mode(mode)?, unsafe { config(p, units, len)? });
            // SAFETY: checked, and the written buffers overlap nothing.
            let (xs, out, mask) = unsafe { (xs.slice(), out.slice_mut(), mask.slice_mut()) };
            Ok(op.forward_to_with_mask(mode, xs, out, mask, self::key(key))?)
        })
    })
}

/// Writes the mask of a call on `len` elements, without any data: the
/// decisions `bitdrop_forward()` makes with the same key.
///
/// # Safety
///
/// As `bitdrop_forward()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bitdrop_fill_mask(
    p: f32,
    mode: BitdropMode,
    units: *const BitdropUnits,
    key: BitdropKey,
    len: usize,
    mask: *mut u64,
    mask_words: usize,
) -> BitdropStatus {
    status(|| {
        let mask = Buffer::new(mask, mask_words)?;
        let (mode, op) = (self::mode(mode)?, unsafe { config(p, units, len)? });
        if op.units().len() != len {
            let expected = op.units().len();
            return Err(Error::ShapeMismatch {
                expected,
                found: len,
            }
            .into());
        }
        // SAFETY: checked; the only buffer of the call.
        Ok(op.fill_mask(mode, unsafe { mask.slice_mut() }, self::key(key))?)
    })
}

/// Applies the mask at `mask` in place: kept elements become `x * scale`,
/// dropped ones `+0`.
///
/// # Safety
///
/// As `bitdrop_forward()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bitdrop_apply_mask(
    dtype: BitdropDtype,
    p: f32,
    mode: BitdropMode,
    units: *const BitdropUnits,
    xs: *mut c_void,
    len: usize,
    mask: *const u64,
    mask_words: usize,
) -> BitdropStatus {
    status(|| {
        by_dtype!(dtype, E => {
            let (xs, mask) = (Buffer::new(xs.cast::<E>(), len)?, Buffer::new(mask, mask_words)?);
            disjoint(&xs, &[mask.range()])?;
            let (mode, op) = (self::mode(mode)?, unsafe { config(p, units, len)? });
            // SAFETY: checked, and the written buffer overlaps nothing.
            let (xs, mask) = unsafe { (xs.slice_mut(), mask.slice()) };
            Ok(op.apply_mask(mode, xs, mask)?)
        })
    })
}

/// Applies the mask from `xs` into `out`.
///
/// # Safety
///
/// As `bitdrop_forward()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bitdrop_apply_mask_to(
    dtype: BitdropDtype,
    p: f32,
    mode: BitdropMode,
    units: *const BitdropUnits,
    xs: *const c_void,
    len: usize,
    out: *mut c_void,
    out_len: usize,
    mask: *const u64,
    mask_words: usize,
) -> BitdropStatus {
    status(|| {
        by_dtype!(dtype, E => {
            let xs = Buffer::new(xs.cast::<E>(), len)?;
            let (out, mask) = (Buffer::new(out.cast::<E>(), out_len)?, Buffer::new(mask, mask_words)?);
            disjoint(&out, &[xs.range(), mask.range()])?;
            let (mode, op) = (self::mode(mode)?, unsafe { config(p, units, len)? });
            // SAFETY: checked, and the written buffer overlaps nothing.
            let (xs, out, mask) = unsafe { (xs.slice(), out.slice_mut(), mask.slice()) };
            Ok(op.apply_mask_to(mode, xs, mask, out)?)
        })
    })
}

/// The backward pass in place on the gradient at `grad`: the mask of the
/// forward call with the same `p`, `units` and key, regenerated, applied
/// to the gradient. No mask memory is kept between the passes.
///
/// # Safety
///
/// As `bitdrop_forward()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bitdrop_backward(
    dtype: BitdropDtype,
    p: f32,
    mode: BitdropMode,
    units: *const BitdropUnits,
    key: BitdropKey,
    grad: *mut c_void,
    len: usize,
) -> BitdropStatus {
    status(|| {
        by_dtype!(dtype, E => {
            let grad = Buffer::new(grad.cast::<E>(), len)?;
            let (mode, op) = (self::mode(mode)?, unsafe { config(p, units, len)? });
            // SAFETY: checked; the only buffer of the call.
            Ok(op.backward(mode, unsafe { grad.slice_mut() }, self::key(key))?)
        })
    })
}

/// `bitdrop_backward()` from `grad` into `out`, which must not overlap.
///
/// # Safety
///
/// As `bitdrop_forward()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bitdrop_backward_to(
    dtype: BitdropDtype,
    p: f32,
    mode: BitdropMode,
    units: *const BitdropUnits,
    key: BitdropKey,
    grad: *const c_void,
    len: usize,
    out: *mut c_void,
    out_len: usize,
) -> BitdropStatus {
    status(|| {
        by_dtype!(dtype, E => {
            let (grad, out) = (Buffer::new(grad.cast::<E>(), len)?, Buffer::new(out.cast::<E>(), out_len)?);
            disjoint(&out, &[grad.range()])?;
            let (mode, op) = (self::mode(mode)?, unsafe { config(p, units, len)? });
            // SAFETY: checked, and `out` overlaps nothing.
            let (grad, out) = unsafe { (grad.slice(), out.slice_mut()) };
            Ok(op.backward_to(mode, grad, out, self::key(key))?)
        })
    })
}

/// The buffers of a fused residual call, checked, as bitdrop's
/// [`Residual`]: `out` may be `x` or `residual` itself (in place), and
/// otherwise overlaps neither; `bias` (none when `bias_len` is 0) and
/// `mask` overlap no written buffer.
///
/// # Safety
///
/// As `bitdrop_forward()`; the slices live only during the call.
unsafe fn residual<'a, E: Element>(
    x: *const c_void,
    residual: *const c_void,
    out: *mut c_void,
    len: usize,
    bias: *const c_void,
    bias_len: usize,
    mask: Option<Buffer<u64>>,
) -> Result<(Residual<'a, E>, Option<&'a [E]>), BitdropStatus> {
    let (x, r) = (
        Buffer::new(x.cast::<E>(), len)?,
        Buffer::new(residual.cast::<E>(), len)?,
    );
    let out = Buffer::new(out.cast::<E>(), len)?;
    let bias = match bias_len {
        0 => None,
        _ => Some(Buffer::new(bias.cast::<E>(), bias_len)?),
    };
    // In place on x (0) or on the residual (1): `out` is that buffer itself,
    // which then need not be disjoint from it.
    let place = [x.ptr, r.ptr].iter().position(|&p| len > 0 && p == out.ptr);
    let mut read = [x.range(), r.range(), bias.map_or((0, 0), |b| b.range())];
    if let Some(i) = place {
        read[i] = (0, 0);
    }
    disjoint(&out, &read)?;
    if let Some(mask) = mask {
        disjoint(&mask, &[x.range(), r.range(), out.range(), read[2]])?;
    }
    // SAFETY: checked; the one written buffer overlaps no other.
    let io = unsafe {
        match place {
            Some(0) => Residual::IntoX {
                x: out.slice_mut(),
                residual: r.slice(),
            },
            Some(_) => Residual::IntoResidual {
                x: x.slice(),
                residual: out.slice_mut(),
            },
            None => Residual::Into {
                x: x.slice(),
                residual: r.slice(),
                out: out.slice_mut(),
            },
        }
    };
    // SAFETY: checked; read only.
    Ok((io, bias.map(|b| unsafe { b.slice() })))
}

/// Dropout fused with the residual add, `out[i] = residual[i] +
/// dropout(x + bias)[i]` (the bias, a row of `bias_len` elements repeated,
/// is optional: `bias_len` 0 for none). All three buffers have `len`
/// elements; `out` may be `x` itself or `residual` itself (in place, which
/// then must not overlap the other), and otherwise overlaps neither.
///
/// # Safety
///
/// As `bitdrop_forward()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bitdrop_residual_add(
    dtype: BitdropDtype,
    p: f32,
    mode: BitdropMode,
    units: *const BitdropUnits,
    key: BitdropKey,
    x: *const c_void,
    residual: *const c_void,
    out: *mut c_void,
    len: usize,
    bias: *const c_void,
    bias_len: usize,
) -> BitdropStatus {
    status(|| {
        by_dtype!(dtype, E => {
            let (io, bias) = unsafe { self::residual::<E>(x, residual, out, len, bias, bias_len, None)? };
            let (mode, op) = (self::mode(mode)?, unsafe { config(p, units, len)? });
            Ok(op.residual_add(mode, io, bias, self::key(key))?)
        })
    })
}

/// `bitdrop_residual_add()` that also writes the mask.
///
/// # Safety
///
/// As `bitdrop_forward()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bitdrop_residual_add_with_mask(
    dtype: BitdropDtype,
    p: f32,
    mode: BitdropMode,
    units: *const BitdropUnits,
    key: BitdropKey,
    x: *const c_void,
    residual: *const c_void,
    out: *mut c_void,
    len: usize,
    bias: *const c_void,
    bias_len: usize,
    mask: *mut u64,
    mask_words: usize,
) -> BitdropStatus {
    status(|| {
        by_dtype!(dtype, E => {
            let words = Buffer::new(mask, mask_words)?;
            let (io, bias) = unsafe { self::residual::<E>(x, residual, out, len, bias, bias_len, Some(words))? };
            let (mode, op) = (self::mode(mode)?, unsafe { config(p, units, len)? });
            // SAFETY: checked: the mask overlaps no other buffer.
            let mask = unsafe { words.slice_mut() };
            Ok(op.residual_add_with_mask(mode, io, bias, mask, self::key(key))?)
        })
    })
}

#[cfg(not(feature = "std"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // Unreachable: nothing here panics. Without std there is no unwinding
    // or abort to reach, so the core stops.
    loop {}
}
