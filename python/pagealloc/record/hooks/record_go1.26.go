//go:build linux

// pagealloc record: Go 1.26's own hooks (see record_common.go; those
// shared with Go 1.19 are in record_shared.go). Each wrapper
// calls the original, renamed <name>Unrecorded in the overlay's copy of
// its file, and logs what it did, still under the lock the original ran
// under.

package runtime

//go:systemstack
func (p *pageAlloc) free(base, npages uintptr) {
	if p != &mheap_.pages {
		p.freeUnrecorded(base, npages)
		return
	}
	precWriteBegin()
	p.freeUnrecorded(base, npages)
	if precBeginWrite() {
		precStr("f")
		precHex(uint64(base))
		precHex(uint64(npages))
		precEnd()
	}
}

func (p *pageAlloc) markRandomPaddingPages(base uintptr, npages uintptr) {
	if p != &mheap_.pages {
		p.markRandomPaddingPagesUnrecorded(base, npages)
		return
	}
	precWriteBegin()
	p.markRandomPaddingPagesUnrecorded(base, npages)
	if precBeginWrite() {
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

// find is lock-free: it is logged as raced, with the cursor it left, when
// anything it reads may have changed while it ran (record_common.go).
func (s *scavengeIndex) find(force bool) (chunkIdx, uint) {
	if s != &mheap_.pages.scav.index {
		return s.findUnrecorded(force)
	}
	writes, finds, busy := precFindBegin()
	ci, page := s.findUnrecorded(force)
	if ok, raced := precBeginFind(writes, finds, busy); ok {
		precStr("sf")
		precHex(precGoid())
		precHex(uint64(ci))
		precHex(uint64(page))
		precHex(precBool(raced))
		cursor := &s.searchAddrBg
		if force {
			cursor = &s.searchAddrForce
		}
		addr, marked := cursor.Load()
		precHex(uint64(addr))
		precHex(precBool(marked))
		precEnd()
	}
	return ci, page
}

func (s *scavengeIndex) nextGen() {
	if s != &mheap_.pages.scav.index {
		s.nextGenUnrecorded()
		return
	}
	precWriteBegin()
	s.nextGenUnrecorded()
	if precBeginWrite() {
		precStr("ng")
		precEnd()
	}
}
