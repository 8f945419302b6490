//! The Rust `Heap`: real pages, zeroing, growth, limits, threads.

use std::ptr::NonNull;
use std::time::{Duration, Instant};

use pagealloc::{Error, Heap, HEAP_ARENA_BYTES, PAGE_SIZE};

const MIB: u64 = 1 << 20;

fn bytes<'a>(p: NonNull<u8>, npages: u64) -> &'a mut [u8] {
    // SAFETY: the tests only view spans they allocated and have not freed,
    // one view at a time.
    unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), (npages * PAGE_SIZE) as usize) }
}

#[test]
fn spans_are_writable_and_zeroed_when_asked() {
    let heap = Heap::new(256 * MIB).unwrap();
    // Spans of 16 pages and more come from the page allocator itself, first
    // fit, so a freed span's pages are the next one's.
    let n = 16;
    // Fresh pages: zero.
    let a = heap.alloc(n, true).unwrap();
    assert_eq!(a.as_ptr() as u64 % PAGE_SIZE, 0);
    assert!(bytes(a, n).iter().all(|&b| b == 0));
    bytes(a, n).fill(0xAB);
    heap.free(a, n).unwrap();
    // Reused without zeroing: the old contents.
    let b = heap.alloc(n, false).unwrap();
    assert_eq!(b, a);
    assert!(bytes(b, n).iter().all(|&x| x == 0xAB));
    heap.free(b, n).unwrap();
    // Reused with zeroing: zero again.
    let c = heap.alloc(n, true).unwrap();
    assert_eq!(c, a);
    assert!(bytes(c, n).iter().all(|&x| x == 0));
    // A span that mixes dirty pages and fresh ones: all zero.
    bytes(c, n).fill(0xCD);
    heap.free(c, n).unwrap();
    let d = heap.alloc(n + 10, true).unwrap();
    assert_eq!(d, a);
    assert!(bytes(d, n + 10).iter().all(|&x| x == 0));
    bytes(d, n + 10).fill(0xEE);
    heap.free(d, n + 10).unwrap();
    // Scavenged pages read as zero without being written.
    let released = heap.scavenge(u64::MAX).unwrap();
    assert!(released >= (n + 10) * PAGE_SIZE, "released {released}");
    let e = heap.alloc(n + 10, false).unwrap();
    assert!(bytes(e, n + 10).iter().all(|&x| x == 0));
    heap.verify().unwrap();
}

#[test]
fn small_spans_come_from_the_page_cache_zeroed() {
    let heap = Heap::new(256 * MIB).unwrap();
    // Dirty the first 64 pages through 1- and 3-page spans, free them all.
    let spans: Vec<_> = (0..40)
        .map(|i| {
            let n = if i % 2 == 0 { 1 } else { 3 };
            let p = heap.alloc(n, false).unwrap();
            bytes(p, n).fill(0x5A);
            (p, n)
        })
        .collect();
    heap.verify().unwrap();
    for &(p, n) in &spans {
        heap.free(p, n).unwrap();
    }
    // Whatever mix of dirty and fresh pages the cache hands out next, a
    // zeroed span is zero.
    for n in [1, 2, 5, 15, 1, 7] {
        let p = heap.alloc(n, true).unwrap();
        assert!(bytes(p, n).iter().all(|&b| b == 0), "{n} pages");
        heap.verify().unwrap();
    }
    // scavenge flushes the cache first, so every free page is released.
    heap.scavenge(u64::MAX).unwrap();
    let s = heap.stats();
    assert_eq!(s.retained, s.in_use);
    heap.verify().unwrap();
}

#[test]
fn grows_by_arenas_up_to_max_bytes() {
    let heap = Heap::new(3 * HEAP_ARENA_BYTES).unwrap();
    assert_eq!(heap.stats().arenas, 0);
    let a = heap.alloc(1, true).unwrap();
    let s = heap.stats();
    assert_eq!((s.arenas, s.in_use), (1, PAGE_SIZE));
    assert_eq!(s.released, HEAP_ARENA_BYTES - PAGE_SIZE);
    assert_eq!(s.retained, PAGE_SIZE);
    // Larger than an arena: grows by two more, contiguous with the first.
    let big = heap.alloc(HEAP_ARENA_BYTES / PAGE_SIZE + 1, true).unwrap();
    assert_eq!(heap.stats().arenas, 3);
    bytes(big, HEAP_ARENA_BYTES / PAGE_SIZE + 1).fill(1);
    // Past max_bytes: HeapFull, and the heap keeps working.
    match heap.alloc(HEAP_ARENA_BYTES / PAGE_SIZE * 2, true) {
        Err(Error::HeapFull { .. }) => {}
        other => panic!("expected HeapFull, got {other:?}"),
    }
    match heap.alloc(u64::MAX / PAGE_SIZE, true) {
        Err(Error::HeapFull { .. }) => {}
        other => panic!("expected HeapFull, got {other:?}"),
    }
    let c = heap.alloc(2, true).unwrap();
    heap.free(c, 2).unwrap();
    heap.free(big, HEAP_ARENA_BYTES / PAGE_SIZE + 1).unwrap();
    heap.free(a, 1).unwrap();
    assert!(heap.free(a, 1).is_err(), "double free refused");
    assert!(matches!(heap.alloc(0, true), Err(Error::ZeroPages)));
    assert_eq!(heap.stats().in_use, 0);
    heap.verify().unwrap();
}

#[test]
fn small_heaps_stop_at_max_bytes() {
    let heap = Heap::new(5 * MIB).unwrap(); // rounds up to 8 MiB: two chunks
    assert_eq!(heap.max_bytes(), 8 * MIB);
    let a = heap.alloc(1024, true).unwrap();
    assert!(heap.alloc(1, true).is_err());
    heap.free(a, 1024).unwrap();
    assert_eq!(heap.stats().arenas, 1);
}

#[test]
fn memory_limit_scavenges_in_the_background() {
    let heap = Heap::new(1 << 30).unwrap();
    let n = 128 * MIB / PAGE_SIZE;
    let a = heap.alloc(n, true).unwrap();
    bytes(a, n).fill(7);
    heap.free(a, n).unwrap();
    assert!(heap.stats().retained >= 128 * MIB);
    heap.set_memory_limit(Some(16 * MIB));
    let t0 = Instant::now();
    while heap.stats().retained > 16 * MIB {
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", heap.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    // Nothing spins once under the limit, and in-use memory is never taken.
    let b = heap.alloc(64 * MIB / PAGE_SIZE, true).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(heap.stats().in_use, 64 * MIB);
    heap.free(b, 64 * MIB / PAGE_SIZE).unwrap();
    let t0 = Instant::now();
    while heap.stats().retained > 16 * MIB {
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", heap.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    heap.set_memory_limit(None);
    heap.verify().unwrap();
}

#[test]
fn threads_get_disjoint_spans() {
    let heap = Heap::new(1 << 30).unwrap();
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let heap = &heap;
            s.spawn(move || {
                let mut live = Vec::new();
                for i in 0..1000u64 {
                    let n = 1 + (i * 7 + t as u64) % 13;
                    let p = heap.alloc(n, i % 2 == 0).unwrap();
                    bytes(p, n).fill(t + 1);
                    live.push((p, n));
                    if live.len() > 20 {
                        let (p, n) = live.swap_remove((i % 20) as usize);
                        assert!(bytes(p, n).iter().all(|&b| b == t + 1), "overlap");
                        heap.free(p, n).unwrap();
                    }
                }
                for (p, n) in live {
                    assert!(bytes(p, n).iter().all(|&b| b == t + 1), "overlap");
                    heap.free(p, n).unwrap();
                }
            });
        }
    });
    assert_eq!(heap.stats().in_use, 0);
    heap.verify().unwrap();
}

/// Per-thread caches: a span freed by another thread goes back to the cache
/// that handed it out, and a second free of it is refused there.
#[test]
fn cross_thread_free_returns_to_the_owners_cache() {
    let heap = Heap::new(256 * MIB).unwrap();
    let a = heap.alloc(1, false).unwrap();
    let b = heap.alloc(1, false).unwrap();
    assert_eq!(b.as_ptr() as u64, a.as_ptr() as u64 + PAGE_SIZE);
    let a_addr = a.as_ptr() as usize;
    std::thread::scope(|s| {
        s.spawn(|| {
            let a = NonNull::new(a_addr as *mut u8).unwrap();
            heap.free(a, 1).unwrap();
            // Already back in the owner's cache: a double free.
            assert!(matches!(heap.free(a, 1), Err(Error::NotInUse { .. })));
            heap.verify().unwrap();
        });
    });
    assert!(matches!(heap.free(a, 1), Err(Error::NotInUse { .. })));
    // The owner's next small span is that page again, from its cache.
    assert_eq!(heap.alloc(1, false).unwrap(), a);
    assert_eq!(heap.stats().in_use, 2 * PAGE_SIZE);
    heap.free(a, 1).unwrap();
    heap.free(b, 1).unwrap();
    assert_eq!(heap.stats().in_use, 0);
    heap.verify().unwrap();
}

/// A thread's cache is flushed when the thread exits, so that every free
/// page can be scavenged; and scavenging retires live caches too.
#[test]
fn thread_exit_and_scavenge_flush_the_caches() {
    let heap = Heap::new(256 * MIB).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            let p = heap.alloc(3, true).unwrap();
            bytes(p, 3).fill(1);
            heap.free(p, 3).unwrap();
        });
    });
    heap.verify().unwrap();
    let st = heap.stats();
    assert_eq!(st.in_use, 0);
    heap.scavenge(u64::MAX).unwrap();
    assert_eq!(heap.stats().released, heap.stats().free);

    // A live cache (this thread's) is retired by the scavenger; its
    // handed-out span then goes back to the page allocator.
    let p = heap.alloc(2, true).unwrap();
    bytes(p, 2).fill(7);
    heap.scavenge(u64::MAX).unwrap();
    let st = heap.stats();
    assert_eq!(st.in_use, 2 * PAGE_SIZE);
    assert_eq!(st.released, st.free);
    heap.verify().unwrap();
    heap.free(p, 2).unwrap();
    assert!(matches!(heap.free(p, 2), Err(Error::NotInUse { .. })));
    // Reused zeroed after all that.
    let q = heap.alloc(2, true).unwrap();
    assert!(bytes(q, 2).iter().all(|&x| x == 0));
    heap.free(q, 2).unwrap();
    heap.verify().unwrap();
}

/// One free may cover pages of the page allocator and pages a cache handed
/// out; each goes back where it belongs, all or nothing.
#[test]
fn a_free_across_cache_and_allocator_pages() {
    let heap = Heap::new(256 * MIB).unwrap();
    let big = heap.alloc(20, false).unwrap(); // the page allocator's
    let small = heap.alloc(1, false).unwrap(); // the cache's, right after
    assert_eq!(small.as_ptr() as u64, big.as_ptr() as u64 + 20 * PAGE_SIZE);
    // Covering a free cached page too: refused, nothing changes.
    let before = heap.stats();
    assert!(matches!(heap.free(big, 22), Err(Error::NotInUse { .. })));
    assert_eq!(heap.stats(), before);
    heap.verify().unwrap();
    heap.free(big, 21).unwrap();
    assert_eq!(heap.stats().in_use, 0);
    heap.verify().unwrap();
    // The small page went back to the cache, the big span to the allocator.
    assert_eq!(heap.alloc(1, false).unwrap(), small);
    assert_eq!(heap.alloc(20, false).unwrap(), big);
    heap.verify().unwrap();
}

/// Threads allocate from their own caches: disjoint pages, every counter
/// exact after a mix of own and cross-thread frees.
#[test]
fn threads_with_caches_keep_exact_counters() {
    let heap = Heap::new(1 << 30).unwrap();
    let spans: Vec<Vec<(usize, u64)>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|t| {
                let heap = &heap;
                s.spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..1000u64 {
                        let n = 1 + (i * 7 + t) % 15;
                        let p = heap.alloc(n, true).unwrap();
                        bytes(p, n)[0] = t as u8;
                        if i % 3 == 0 {
                            heap.free(p, n).unwrap();
                        } else {
                            mine.push((p.as_ptr() as usize, n));
                        }
                    }
                    mine
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<(usize, u64)> = spans.iter().flatten().copied().collect();
    all.sort_unstable();
    for w in all.windows(2) {
        assert!(w[0].0 + (w[0].1 * PAGE_SIZE) as usize <= w[1].0, "overlap");
    }
    let live: u64 = all.iter().map(|&(_, n)| n * PAGE_SIZE).sum();
    assert_eq!(heap.stats().in_use, live);
    heap.verify().unwrap();
    // Free them from this thread (none of them came from its cache).
    for (p, n) in all {
        heap.free(NonNull::new(p as *mut u8).unwrap(), n).unwrap();
    }
    assert_eq!(heap.stats().in_use, 0);
    heap.verify().unwrap();
}

/// Threads free each other's spans (cross-thread frees into live caches)
/// while another thread scavenges (retiring the caches under them): every
/// span arrives zeroed, keeps its contents until freed, and the counters
/// stay exact.
#[test]
fn threads_free_each_others_spans_while_scavenging() {
    let heap = Heap::new(1 << 30).unwrap();
    let pool = std::sync::Mutex::new(Vec::<(usize, u64)>::new());
    let done = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..3u64 {
            let (heap, pool, done) = (&heap, &pool, &done);
            s.spawn(move || {
                let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ t;
                for _ in 0..3000 {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let n = 1 + rng % 15;
                    let p = heap.alloc(n, true).unwrap();
                    let span = bytes(p, n);
                    assert!(span.iter().all(|&x| x == 0), "a span arrived dirty");
                    span.fill(p.as_ptr() as usize as u8 ^ n as u8);
                    let mut pool = pool.lock().unwrap();
                    pool.push((p.as_ptr() as usize, n));
                    if pool.len() > 64 {
                        let k = (rng >> 32) as usize % pool.len();
                        let (q, m) = pool.swap_remove(k);
                        drop(pool);
                        let q = NonNull::new(q as *mut u8).unwrap();
                        let mark = q.as_ptr() as usize as u8 ^ m as u8;
                        assert!(
                            bytes(q, m).iter().all(|&x| x == mark),
                            "a span was overwritten"
                        );
                        heap.free(q, m).unwrap();
                    }
                }
                done.fetch_add(1, std::sync::atomic::Ordering::Release);
            });
        }
        s.spawn(|| {
            while done.load(std::sync::atomic::Ordering::Acquire) < 3 {
                heap.scavenge(MIB).unwrap();
                heap.verify().unwrap();
                std::thread::yield_now();
            }
        });
    });
    let pool = pool.into_inner().unwrap();
    let live: u64 = pool.iter().map(|&(_, n)| n * PAGE_SIZE).sum();
    assert_eq!(heap.stats().in_use, live);
    heap.verify().unwrap();
    for (p, n) in pool {
        heap.free(NonNull::new(p as *mut u8).unwrap(), n).unwrap();
    }
    let st = heap.stats();
    assert_eq!(st.in_use, 0);
    heap.scavenge(u64::MAX).unwrap();
    assert_eq!(heap.stats().released, st.free);
    heap.verify().unwrap();
}

/// Go 1.26's `mheap.allocSpan` under a memory limit: an allocation whose
/// fresh (scavenged) pages would take the retained memory past the limit
/// releases the excess at once, forced, before it returns.
#[test]
fn allocation_past_the_limit_scavenges_eagerly() {
    let heap = Heap::new(1 << 30).unwrap();
    let n = 32 * MIB / PAGE_SIZE;
    let a = heap.alloc(n, true).unwrap();
    let c = heap.alloc(n, true).unwrap();
    bytes(a, n).fill(1);
    bytes(c, n).fill(2);
    heap.free(a, n).unwrap(); // 32 MiB free and dirty, below c
    assert_eq!(heap.stats().retained, 64 * MIB);
    // Under the limit and under the background scavenger's goal (66.5 MiB).
    heap.set_memory_limit(Some(70 * MIB));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(heap.stats().retained, 64 * MIB);
    // 48 MiB does not fit in a's 32: it takes a fresh arena, whose pages
    // would put retained at 112 MiB; a's dirty 32 MiB go back first.
    let d = heap.alloc(48 * MIB / PAGE_SIZE, true).unwrap();
    let st = heap.stats();
    assert_eq!(st.in_use, 80 * MIB);
    assert!(st.retained <= 80 * MIB, "{st:?}");
    assert!(
        bytes(c, n).iter().all(|&x| x == 2),
        "in-use memory is never taken"
    );
    heap.free(d, 48 * MIB / PAGE_SIZE).unwrap();
    heap.free(c, n).unwrap();
    heap.set_memory_limit(None);
    heap.verify().unwrap();
}

/// The background scavenger works toward Go 1.22+'s goal, 95% of the
/// limit, not the limit itself.
#[test]
fn background_scavenger_reaches_go_memory_limit_goal() {
    assert_eq!(pagealloc::memory_limit_goal(100 * MIB), 95 * MIB);
    let heap = Heap::new(1 << 30).unwrap();
    let n = 128 * MIB / PAGE_SIZE;
    let a = heap.alloc(n, true).unwrap();
    bytes(a, n).fill(7);
    heap.free(a, n).unwrap();
    heap.set_memory_limit(Some(64 * MIB));
    let goal = pagealloc::memory_limit_goal(64 * MIB);
    let t0 = Instant::now();
    while heap.stats().retained > goal {
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", heap.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    heap.set_memory_limit(None);
    heap.verify().unwrap();
}

/// Free, unreleased bytes: what the idle budget bounds.
fn idle(heap: &Heap) -> u64 {
    let st = heap.stats();
    st.free - st.released
}

#[test]
fn the_idle_budget_bounds_free_memory_kept_resident() {
    let heap = Heap::new(1 << 30).unwrap();
    assert_eq!(heap.idle_budget(), pagealloc::DEFAULT_IDLE_BUDGET);
    heap.set_idle_budget(None);
    let n = 16 * MIB / PAGE_SIZE;
    let spans: Vec<_> = (0..6).map(|_| heap.alloc(n, false).unwrap()).collect();
    for &p in &spans {
        bytes(p, n).fill(1);
    }
    // No budget: every freed page stays resident for the next allocation.
    for &p in &spans[..4] {
        heap.free(p, n).unwrap();
    }
    assert_eq!(idle(&heap), 64 * MIB);
    // Setting a budget releases the excess at once, highest addresses first.
    heap.set_idle_budget(Some(24 * MIB));
    assert_eq!(heap.idle_budget(), Some(24 * MIB));
    assert!(idle(&heap) <= 24 * MIB, "idle {} MiB", idle(&heap) / MIB);
    assert!(idle(&heap) >= 16 * MIB, "released more than asked");
    heap.verify().unwrap();
    // A free past the budget releases the excess; the rest is reused as is.
    heap.free(spans[4], n).unwrap();
    assert!(idle(&heap) <= 24 * MIB);
    // Budget 0: every freed page goes back at once, and reads as zero.
    heap.set_idle_budget(Some(0));
    assert_eq!(idle(&heap), 0);
    heap.free(spans[5], n).unwrap();
    assert_eq!(idle(&heap), 0);
    let again = heap.alloc(n, false).unwrap();
    assert!(bytes(again, n).iter().all(|&b| b == 0));
    heap.free(again, n).unwrap();
    let st = heap.stats();
    assert_eq!((st.in_use, st.free - st.released), (0, 0));
    heap.verify().unwrap();
}
