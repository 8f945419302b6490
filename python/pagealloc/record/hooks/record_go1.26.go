//go:build linux

// pagealloc record: Go 1.26's own hooks (see record_common.go; those
// shared with Go 1.19 are in record_shared.go). Each wrapper
// calls the original, renamed <name>Unrecorded in the overlay's copy of
// its file, and logs what it did, still under the lock the original ran
// under.

package runtime

//go:systemstack
func (p *pageAlloc) free(base, npages uintptr) {
	p.freeUnrecorded(base, npages)
	if p == &mheap_.pages && precBegin() {
		precStr("f")
		precHex(uint64(base))
		precHex(uint64(npages))
		precEnd()
	}
}

func (p *pageAlloc) markRandomPaddingPages(base uintptr, npages uintptr) {
	p.markRandomPaddingPagesUnrecorded(base, npages)
	if p == &mheap_.pages && precBegin() {
		precStr("pad")
		precHex(uint64(base))
		precHex(uint64(npages))
		precEnd()
	}
}

func (p *pageAlloc) scavenge(nbytes uintptr, shouldStop func() bool, force bool) uintptr {
	if p != &mheap_.pages {
		return p.scavengeUnrecorded(nbytes, shouldStop, force)
	}
	g := precGoid()
	if precBegin() {
		precStr("S")
		precHex(g)
		precHex(uint64(nbytes))
		precHex(precBool(force))
		precEnd()
	}
	r := p.scavengeUnrecorded(nbytes, shouldStop, force)
	if precBegin() {
		precStr("E")
		precHex(g)
		precHex(uint64(r))
		precEnd()
	}
	return r
}

func (s *scavengeIndex) find(force bool) (chunkIdx, uint) {
	ci, page := s.findUnrecorded(force)
	if s == &mheap_.pages.scav.index && precBegin() {
		precStr("sf")
		precHex(precGoid())
		precHex(uint64(ci))
		precHex(uint64(page))
		precEnd()
	}
	return ci, page
}

func (s *scavengeIndex) nextGen() {
	s.nextGenUnrecorded()
	if s == &mheap_.pages.scav.index && precBegin() {
		precStr("ng")
		precEnd()
	}
}
