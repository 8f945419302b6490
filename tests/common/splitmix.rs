//! splitmix64, the PRNG of the benchmark scenarios (docs/benchmarks.md), shared by the Rust
//! tests, the fuzz target, the benchmarks and the examples.

/// splitmix64: the state starts at the seed; all arithmetic is mod 2^64.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
