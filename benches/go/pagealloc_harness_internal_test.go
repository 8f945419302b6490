// Part of the pagealloc project's benchmark harness (benches/go/run.sh copies
// it into a private copy of GOROOT/src/runtime). It drives Go's own page
// allocator, which is reachable only from inside package runtime, the same
// way export_test.go does for Go's own tests.

package runtime

// HarnessOp is one trace operation: Kind 0 is grow(A=base, B=size), 1 is
// alloc(A=npages), 2 is free of the A-th alloc's pages.
type HarnessOp struct {
	Kind uint8
	A, B uintptr
}

// HarnessReplay replays ops on a fresh pageAlloc inside one locked section on
// the system stack. addrs and sizes must have room for every alloc. Ops in
// [from, to) are timed as one block; the rest are untimed set-up or checks.
// It returns the timed nanoseconds, the allocator (free it with
// FreePageAlloc) and the index of a free of a failed alloc, or -1.
func HarnessReplay(ops []HarnessOp, from, to int, addrs, sizes []uintptr) (ns int64, pp *PageAlloc, bad int) {
	pp = NewPageAlloc(map[ChunkIdx][]BitRange{}, nil)
	p := (*pageAlloc)(pp)
	bad = -1
	systemstack(func() {
		lock(p.mheapLock)
		k := 0
		var t0 int64
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
				a, _ := p.alloc(op.A)
				addrs[k], sizes[k] = a, op.A
				k++
			case 2:
				if addrs[op.A] == 0 {
					bad = i
					unlock(p.mheapLock)
					return
				}
				p.free(addrs[op.A], sizes[op.A], false)
			}
		}
		if to >= len(ops) {
			ns = nanotime() - t0
		}
		unlock(p.mheapLock)
	})
	return
}

// HarnessResults renders the results file (pagealloc's DESIGN.md format):
// one address per alloc, the bounds, then every grown chunk's in-use runs.
func HarnessResults(pp *PageAlloc, addrs []uintptr) string {
	p := (*pageAlloc)(pp)
	buf := make([]byte, 0, len(addrs)*14+1024)
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
	for _, a := range addrs {
		hex(uint64(a))
		buf = append(buf, '\n')
	}
	buf = append(buf, "bounds "...)
	hex(uint64(p.start))
	buf = append(buf, ' ')
	hex(uint64(p.end))
	buf = append(buf, '\n')
	for _, r := range p.inUse.ranges {
		for ci := chunkIndex(r.base.addr()); ci < chunkIndex(r.limit.addr()-1)+1; ci++ {
			buf = append(buf, "chunk "...)
			hex(uint64(ci))
			bits := &p.chunkOf(ci).pallocBits
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
	}
	return string(buf)
}
