//! Seeded random numbers whose streams do not change between crate versions.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The seed of every random choice (training, noise, draws, sampling) unless a request says
/// otherwise.
pub const DEFAULT_SEED: u64 = 0;

/// A reproducible generator for `seed`, with `stream` separating independent uses
/// (data generation, shuffling, sampling) so that one does not shift another.
pub fn seeded(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}
