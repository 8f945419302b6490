// Part of the pagealloc project's Go harness (tests/goharness/run.sh copies
// it into a private copy of GOROOT/src/runtime). It drives Go's own page
// allocator, which is reachable only from inside package runtime, the same
// way export_test.go does for Go's own tests.

package runtime

// HarnessOp is one trace operation: Kind 0 is grow(A=base, B=size), 1 is
// alloc(A=npages), 2 is free of the A-th allocation's pages; v2 adds 3,
// scavenge(A=nbytes; B=1: the background scavenger's, v3 only), 4,
// allocToCache, 5, pageCache.alloc(B=npages) on the A-th cache, and 6,
// pageCache.flush of the A-th cache; v3 adds 7, scavengeIndex.nextGen, and
// 8, markRandomPaddingPages(A=addr, B=npages).
//
// What differs between Go versions (free's signature, scavenge's, the ops
// only Go 1.26 has) is in pagealloc_harness_version_test.go, one per Go
// version (tests/goharness/go1.19, tests/goharness/go1.26); run.sh copies the one
// of the Go it runs.
type HarnessOp struct {
	Kind uint8
	A, B uintptr
}

// HarnessOutWords is how many words of out an op's results take: the
// address and scavenged bytes of an alloc or calloc (only the address in
// v1), the bytes a scavenge released, a cache's base, bits and scav bits.
func HarnessOutWords(kind uint8, v2 bool) int {
	switch kind {
	case 1, 5:
		if v2 {
			return 2
		}
		return 1
	case 3:
		return 1
	case 4:
		return 3
	}
	return 0
}

// HarnessReplay replays ops on a fresh pageAlloc under its lock on the
// system stack, as mheap drives it (frees are never scavenged). A v2 or v3
// replay, v2 here, runs on the machine its trace names, whatever this one
// is: physPageSize is phys and physHugePageSize huge (the trace's
// physpage and hugepage headers; 4 KiB and 2 MiB, linux/amd64's, without
// them). Go reads both where the scavenger needs them (scavengeOne's
// minPages, findScavengeCandidate's huge pages, the metadata mappings'
// alignment), so they are set from before the allocator is initialised
// until after the last op, and then restored.
//
// Those two are also the real heap's, the one this test process runs on:
// if it grew or scavenged while they named another machine, its own
// metadata would be mapped wrong (Go throws "bad prune"). So when the
// trace's machine is not this one, everything that allocates from the Go
// heap happens first, and the world is stopped (no GC running, no other
// goroutine, no background scavenger) for as long as they are changed.
// addrs and sizes need room for every allocation, caches for every cache op
// and out for every result word (HarnessOutWords). Ops in [from, to) are
// timed as one block; the rest are untimed set-up or checks. It returns the
// timed nanoseconds, the allocator (free it with FreePageAlloc) and the
// index of a free of a failed allocation, or -1.
func HarnessReplay(ops []HarnessOp, from, to int, v2 bool, phys, huge uintptr, addrs, sizes []uintptr, ncaches int, out []uintptr) (ns int64, pp *PageAlloc, bad int) {
	savedPhys, savedHuge := physPageSize, physHugePageSize
	otherMachine := v2 && (phys != savedPhys || huge != savedHuge)
	// What NewPageAlloc does for no chunks, with its Go heap allocations
	// made while the sizes are still this machine's.
	p := new(pageAlloc)
	mheapLock := new(mutex)
	caches := make([]pageCache, 0, ncaches)
	bad = -1
	if otherMachine {
		world := harnessStopTheWorld()
		physPageSize, physHugePageSize = phys, huge
		defer func() {
			physPageSize, physHugePageSize = savedPhys, savedHuge
			harnessStartTheWorld(world)
		}()
	}
	harnessInit(p, mheapLock)
	lockInit(p.mheapLock, lockRankMheap)
	pp = (*PageAlloc)(p)
	systemstack(func() {
		lock(p.mheapLock)
		k, o := 0, 0
		var t0 int64
		allocated := func(a, scav, n uintptr) {
			addrs[k], sizes[k] = a, n
			k++
			out[o] = a
			o++
			if v2 {
				out[o] = scav
				o++
			}
		}
		for i, op := range ops {
			if i == from {
				t0 = nanotime()
			}
			if i == to {
				ns = nanotime() - t0
			}
			switch op.Kind {
			case 0:
				p.grow(op.A, op.B)
			case 1:
				a, scav := p.alloc(op.A)
				allocated(a, scav, op.A)
			case 2:
				if addrs[op.A] == 0 {
					bad = i
					unlock(p.mheapLock)
					return
				}
				harnessFree(p, addrs[op.A], sizes[op.A])
			case 3:
				// scavenge takes the heap lock itself, chunk by chunk.
				unlock(p.mheapLock)
				out[o] = harnessScavenge(p, op.A, op.B == 0)
				o++
				lock(p.mheapLock)
			case 4:
				c := p.allocToCache()
				caches = append(caches, c)
				out[o], out[o+1], out[o+2] = c.base, uintptr(c.cache), uintptr(c.scav)
				o += 3
			case 5:
				a, scav := caches[op.A].alloc(op.B)
				allocated(a, scav, op.B)
			case 6:
				caches[op.A].flush(p)
			case 7:
				harnessNextGen(p)
			case 8:
				harnessPad(p, op.A, op.B)
			}
		}
		if to >= len(ops) {
			ns = nanotime() - t0
		}
		unlock(p.mheapLock)
	})
	return
}

// HarnessResults renders the results file (pagealloc's format, docs/formats.md):
// one line per result (out, laid out by HarnessOutWords), the bounds, every
// grown chunk's in-use runs and, for v2, its scavenged runs.
func HarnessResults(pp *PageAlloc, ops []HarnessOp, v2 bool, out []uintptr) string {
	p := (*pageAlloc)(pp)
	buf := make([]byte, 0, len(out)*14+1024)
	hex := func(v uint64) {
		const digits = "0123456789abcdef"
		buf = append(buf, '0', 'x')
		if v == 0 {
			buf = append(buf, '0')
			return
		}
		var tmp [16]byte
		n := 0
		for ; v != 0; v >>= 4 {
			tmp[n] = digits[v&15]
			n++
		}
		for n > 0 {
			n--
			buf = append(buf, tmp[n])
		}
	}
	dec := func(v uint64) {
		var tmp [20]byte
		n := 0
		for {
			tmp[n] = byte('0' + v%10)
			n++
			v /= 10
			if v == 0 {
				break
			}
		}
		for n > 0 {
			n--
			buf = append(buf, tmp[n])
		}
	}
	o := 0
	for _, op := range ops {
		switch w := HarnessOutWords(op.Kind, v2); {
		case op.Kind == 3:
			buf = append(buf, "scavenged "...)
			dec(uint64(out[o]))
		case op.Kind == 4:
			buf = append(buf, "cache "...)
			hex(uint64(out[o]))
			buf = append(buf, ' ')
			hex(uint64(out[o+1]))
			buf = append(buf, ' ')
			hex(uint64(out[o+2]))
		case w == 2:
			hex(uint64(out[o]))
			buf = append(buf, ' ')
			dec(uint64(out[o+1]))
		case w == 1:
			hex(uint64(out[o]))
		default:
			continue
		}
		buf = append(buf, '\n')
		o += HarnessOutWords(op.Kind, v2)
	}
	buf = append(buf, "bounds "...)
	hex(uint64(p.start))
	buf = append(buf, ' ')
	hex(uint64(p.end))
	buf = append(buf, '\n')
	runs := func(tag string, bits *pallocBits, ci chunkIdx) {
		buf = append(buf, tag...)
		hex(uint64(ci))
		for i := uint(0); i < pallocChunkPages; {
			if bits[i/64]>>(i%64)&1 == 0 {
				i++
				continue
			}
			j := i
			for j < pallocChunkPages && bits[j/64]>>(j%64)&1 == 1 {
				j++
			}
			buf = append(buf, ' ')
			dec(uint64(i))
			buf = append(buf, '+')
			dec(uint64(j - i))
			i = j
		}
		buf = append(buf, '\n')
	}
	grown := func(f func(ci chunkIdx)) {
		for _, r := range p.inUse.ranges {
			for ci := chunkIndex(r.base.addr()); ci < chunkIndex(r.limit.addr()-1)+1; ci++ {
				f(ci)
			}
		}
	}
	grown(func(ci chunkIdx) { runs("chunk ", &p.chunkOf(ci).pallocBits, ci) })
	if v2 {
		grown(func(ci chunkIdx) { runs("scav ", (*pallocBits)(&p.chunkOf(ci).scavenged), ci) })
	}
	return string(buf)
}
