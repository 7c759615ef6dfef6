use core::fmt;

/// Everything that can go wrong in this crate.
///
/// Every operation checks all of its arguments before its first write, so a
/// call that returns an `Error` has changed nothing: not the outputs, not the
/// mask, not the caller's random number generator.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The drop probability is NaN, infinite, or outside `0.0..=1.0`.
    InvalidProbability {
        /// The rejected value.
        p: f32,
    },
    /// The output slice does not have the length of the input slice.
    LengthMismatch {
        /// Length of the input.
        input: usize,
        /// Length of the output.
        output: usize,
    },
    /// A mask buffer has fewer words than the elements need (one bit each).
    MaskTooShort {
        /// Words needed.
        needed: usize,
        /// Words given.
        found: usize,
    },
    /// The data does not have the length its [`Units`](crate::Units) or
    /// its other operands say.
    ShapeMismatch {
        /// Elements expected.
        expected: usize,
        /// Elements given.
        found: usize,
    },
    /// A shape that cannot be described: see
    /// [`Units::broadcast`](crate::Units::broadcast).
    InvalidShape {
        /// What is wrong.
        reason: &'static str,
    },
    /// A bias whose length does not divide the data into whole rows (it
    /// must be non-empty unless the data is empty).
    BiasMismatch {
        /// Length of the bias, the row length.
        bias: usize,
        /// Length of the data.
        len: usize,
    },
    /// A noise standard deviation that is NaN, infinite or negative.
    InvalidStdDev {
        /// The rejected value.
        std_dev: f32,
    },
    /// A DropBlock block size of zero.
    InvalidBlockSize {
        /// The rejected value.
        block_size: usize,
    },
    /// The keyed stream would run past position `2^64 - 1`:
    /// `offset + len > 2^64`.
    PositionOverflow {
        /// First position of the call.
        offset: u64,
        /// Positions the call needs: its elements, or its units for
        /// [`Structured`](crate::Structured) calls.
        len: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::InvalidProbability { p } => {
                write!(f, "drop probability {p} is not in 0.0..=1.0")
            }
            Error::LengthMismatch { input, output } => {
                write!(f, "output has {output} elements but the input has {input}")
            }
            Error::MaskTooShort { needed, found } => {
                write!(f, "mask buffer has {found} words but {needed} are needed")
            }
            Error::ShapeMismatch { expected, found } => {
                write!(
                    f,
                    "the data has {found} elements but its shape has {expected}"
                )
            }
            Error::InvalidShape { reason } => write!(f, "invalid shape: {reason}"),
            Error::BiasMismatch { bias, len } => {
                write!(
                    f,
                    "a bias of {bias} elements does not divide {len} into rows"
                )
            }
            Error::InvalidStdDev { std_dev } => {
                write!(f, "standard deviation {std_dev} is not finite and >= 0")
            }
            Error::InvalidBlockSize { block_size } => {
                write!(f, "block size {block_size} is not at least 1")
            }
            Error::PositionOverflow { offset, len } => write!(
                f,
                "keyed stream positions {offset} + {len} elements run past 2^64"
            ),
        }
    }
}

impl core::error::Error for Error {}
