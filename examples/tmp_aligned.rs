#[path = "../benches/common/scenarios.rs"]
mod scenarios;
#[path = "../tests/common/splitmix.rs"]
mod splitmix;
use pagealloc::trace::Op;
use pagealloc::{Arch, PageAlloc, PALLOC_CHUNK_BYTES};
fn main() {
    let s = scenarios::churn_mixed();
    let mut rng = splitmix::SplitMix64(64);
    let aligns: Vec<u64> = s.trace.ops.iter().map(|_| 1 << (rng.next() % 7)).collect();
    let plain = std::env::args().nth(1).is_some();
    let mut pa = PageAlloc::new(Arch::Amd64).unwrap();
    pa.grow(scenarios::BASE, 256 * PALLOC_CHUNK_BYTES).unwrap();
    let mut addrs: Vec<(u64, u64)> = Vec::new();
    let t = std::time::Instant::now();
    for (op, &al) in s.trace.ops[1..].iter().zip(&aligns[1..]) {
        match *op {
            Op::Alloc { npages } => {
                let a = if plain {
                    pa.alloc(npages).unwrap()
                } else {
                    pa.alloc_constrained(npages, al, None).unwrap().0
                };
                addrs.push((a.unwrap_or(0), npages));
            }
            Op::Free { k } => {
                let (a, n) = addrs[k];
                if a != 0 {
                    pa.free(a, n).unwrap();
                }
            }
            _ => {}
        }
    }
    eprintln!("{:?}", t.elapsed());
}
