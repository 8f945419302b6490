//go:build linux

// pagealloc record: Go 1.19's own hooks (see record_common.go; those
// shared with Go 1.26 are in record_shared.go). Each wrapper
// calls the original, renamed <name>Unrecorded in the overlay's copy of
// its file, and logs what it did, still under the lock the original ran
// under.

package runtime

//go:systemstack
func (p *pageAlloc) free(base, npages uintptr, scavenged bool) {
	// scavengeOne gives its pages back with scavenged set: part of the
	// scavenge step it logs itself (sg), not an op of its own, and it
	// changes nothing find reads.
	if p != &mheap_.pages || scavenged {
		p.freeUnrecorded(base, npages, scavenged)
		return
	}
	precWriteBegin()
	p.freeUnrecorded(base, npages, scavenged)
	if precBeginWrite() {
		precStr("f")
		precHex(uint64(base))
		precHex(uint64(npages))
		precEnd()
	}
}

func (p *pageAlloc) scavenge(nbytes uintptr, shouldStop func() bool) uintptr {
	if p != &mheap_.pages {
		return p.scavengeUnrecorded(nbytes, shouldStop)
	}
	g := precGoid()
	if precBegin() {
		precStr("S")
		precHex(g)
		precHex(uint64(nbytes))
		precHex(1) // Go 1.19 has only the forced kind
		precEnd()
	}
	r := p.scavengeUnrecorded(nbytes, shouldStop)
	if precBegin() {
		precStr("E")
		precHex(g)
		precHex(uint64(r))
		precEnd()
	}
	return r
}

// find is lock-free: it is logged as raced, with the cursor it left, when
// anything it reads may have changed while it ran (record_common.go).
func (s *scavengeIndex) find() (chunkIdx, uint) {
	if s != &mheap_.pages.scav.index {
		return s.findUnrecorded()
	}
	writes, finds, busy := precFindBegin()
	ci, page := s.findUnrecorded()
	if ok, raced := precBeginFind(writes, finds, busy); ok {
		precStr("sf")
		precHex(precGoid())
		precHex(uint64(ci))
		precHex(uint64(page))
		precHex(precBool(raced))
		addr, marked := s.searchAddr.Load()
		precHex(uint64(addr))
		precHex(precBool(marked))
		precEnd()
	}
	return ci, page
}
