//! The Heap's thread-cache protocol (src/heap/tcache.rs, `State::free` and
//! `State::retire` in src/heap.rs) explored under every interleaving with
//! loom. Run:
//!
//!     RUSTFLAGS="--cfg loom" cargo test --release --test loom_tcache
//!
//! The model keeps the real protocol and replaces the page allocator by a
//! bitmap of one 8-page block: `pa` (bit set = in use to the page
//! allocator). A live slot's block pages are in use in `pa` and each is
//! either free in the cache (`cache`) or handed out (`handed`). The paths,
//! with the real functions they stand for:
//!
//! - `owner_take` (`Heap::alloc`'s fast path, `LocalCache::take`): the
//!   owner, under the slot lock only, moves a page from `cache` to `handed`.
//! - `owner_free` (`Heap::free`'s fast path, `SlotState::give_back`): the
//!   owner, under the slot lock only, returns a page it handed out if the
//!   slot is still live; otherwise it takes the heap path.
//! - `heap_free` (`State::free`): any thread, under the heap lock, then the
//!   lock of every live slot (in order): a page free in a cache is refused;
//!   handed pages go back to their slot; the rest must be in use in `pa`
//!   and become free there. All or nothing.
//! - `retire` (`State::retire`, the scavenger's flush): under the heap lock
//!   then the slot lock, the slot stops being live, its cached pages become
//!   free in `pa` and its handed pages ordinary in-use pages.
//!
//! What must hold whatever the order: no page is ever free twice or owned
//! twice, every free of a page its caller owns succeeds, and when every
//! caller has freed what it holds, every page is free (in `pa` or in the
//! slot's cache) exactly once.
#![cfg(loom)]

use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

const BLOCK: u64 = 0xff;

struct SlotState {
    live: bool,
    cache: u64,
    handed: u64,
}

struct Slot(Mutex<SlotState>);

struct HeapState {
    pa: u64,
    slots: Vec<Arc<Slot>>,
}

struct Heap {
    state: Mutex<HeapState>,
}

impl Heap {
    /// A heap whose one slot took the whole block (Go's allocToCache).
    fn new() -> (Arc<Heap>, Arc<Slot>) {
        let slot = Arc::new(Slot(Mutex::new(SlotState {
            live: true,
            cache: BLOCK,
            handed: 0,
        })));
        let heap = Arc::new(Heap {
            state: Mutex::new(HeapState {
                pa: BLOCK,
                slots: vec![slot.clone()],
            }),
        });
        (heap, slot)
    }

    fn owner_take(&self, slot: &Slot) -> Option<u64> {
        let mut s = slot.0.lock().unwrap();
        if !s.live || s.cache == 0 {
            return None;
        }
        let page = s.cache & s.cache.wrapping_neg();
        s.cache &= !page;
        s.handed |= page;
        Some(page)
    }

    fn owner_free(&self, slot: &Slot, mask: u64) -> Result<(), &'static str> {
        {
            let mut s = slot.0.lock().unwrap();
            if s.live && s.handed & mask == mask {
                s.handed &= !mask;
                s.cache |= mask;
                return Ok(());
            }
        }
        self.heap_free(mask)
    }

    fn heap_free(&self, mask: u64) -> Result<(), &'static str> {
        let mut st = self.state.lock().unwrap();
        let mut held = Vec::new();
        for slot in st.slots.iter() {
            let s = slot.0.lock().unwrap();
            assert!(s.live, "only live slots are in the heap's list");
            if mask & s.cache != 0 {
                return Err("a page of the range is free in a cache");
            }
            let h = mask & s.handed;
            if h != 0 {
                held.push((s, h));
            }
        }
        let rest = mask & !held.iter().fold(0, |a, (_, h)| a | h);
        if st.pa & rest != rest {
            return Err("a page of the range is not in use");
        }
        for (mut s, h) in held {
            s.handed &= !h;
            s.cache |= h;
        }
        st.pa &= !rest;
        Ok(())
    }

    fn retire(&self, slot: &Arc<Slot>) {
        let mut st = self.state.lock().unwrap();
        let mut s = slot.0.lock().unwrap();
        if !s.live {
            return;
        }
        s.live = false;
        st.pa &= !s.cache;
        s.cache = 0;
        s.handed = 0;
        drop(s);
        st.slots.retain(|x| !Arc::ptr_eq(x, slot));
    }

    /// Every page free exactly once: in `pa`, or in the live slot's cache.
    fn check_all_free(&self, slot: &Slot) {
        let st = self.state.lock().unwrap();
        let s = slot.0.lock().unwrap();
        assert_eq!(s.handed, 0, "a page is still handed out");
        if s.live {
            assert_eq!(
                st.pa, s.cache,
                "cached pages are in use to the page allocator, nothing else"
            );
        } else {
            assert_eq!((st.pa, s.cache), (0, 0), "a retired slot keeps nothing");
        }
    }
}

/// The owner hands a page to another thread, which frees it through the
/// heap lock, while the owner frees its second page itself and the
/// scavenger retires the slot: every order frees both pages exactly once.
#[test]
fn cross_thread_free_races_owner_free_and_retire() {
    loom::model(|| {
        let (heap, slot) = Heap::new();
        let a = heap.owner_take(&slot).expect("a free page");
        let handoff = Arc::new(AtomicU64::new(0));
        let t2 = {
            let (heap, handoff) = (heap.clone(), handoff.clone());
            thread::spawn(move || {
                let mask = loop {
                    let m = handoff.load(Ordering::Acquire);
                    if m != 0 {
                        break m;
                    }
                    thread::yield_now();
                };
                heap.heap_free(mask).expect("freeing a page it owns");
            })
        };
        let t3 = {
            let (heap, slot) = (heap.clone(), slot.clone());
            thread::spawn(move || heap.retire(&slot))
        };
        let b = heap.owner_take(&slot);
        handoff.store(a, Ordering::Release);
        if let Some(b) = b {
            heap.owner_free(&slot, b).expect("freeing its own page");
        }
        t2.join().unwrap();
        t3.join().unwrap();
        heap.check_all_free(&slot);
    });
}

/// Two threads free pages of one span through the heap lock while the
/// owner frees and re-takes pages on its fast path: no page is ever both
/// cached and handed out, and a bogus free (of a page free in the cache)
/// is refused without changing anything.
#[test]
fn frees_through_the_heap_lock_race_the_fast_path() {
    loom::model(|| {
        let (heap, slot) = Heap::new();
        let a = heap.owner_take(&slot).unwrap();
        let b = heap.owner_take(&slot).unwrap();
        let t = {
            let heap = heap.clone();
            thread::spawn(move || heap.heap_free(b).expect("b is handed out"))
        };
        heap.owner_free(&slot, a).expect("a is the owner's");
        let c = heap.owner_take(&slot).unwrap();
        {
            let s = slot.0.lock().unwrap();
            assert_eq!(s.cache & s.handed, 0, "a page both cached and handed out");
        }
        t.join().unwrap();
        let before = (heap.state.lock().unwrap().pa, slot.0.lock().unwrap().cache);
        let free_page = {
            let cache = slot.0.lock().unwrap().cache;
            cache & cache.wrapping_neg()
        };
        assert!(
            heap.heap_free(free_page).is_err(),
            "a free of a cached page must be refused"
        );
        assert_eq!(
            before,
            (heap.state.lock().unwrap().pa, slot.0.lock().unwrap().cache)
        );
        heap.owner_free(&slot, c).unwrap();
        heap.check_all_free(&slot);
    });
}
