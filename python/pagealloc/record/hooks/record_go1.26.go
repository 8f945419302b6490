//go:build linux

// pagealloc record: Go 1.26's hooks (see record_common.go). Each wrapper
// calls the original, renamed <name>Unrecorded in the overlay's copy of
// its file, and logs what it did, still under the lock the original ran
// under.

package runtime

import "unsafe"

//go:systemstack
func (p *pageAlloc) alloc(npages uintptr) (addr uintptr, scav uintptr) {
	addr, scav = p.allocUnrecorded(npages)
	if p == &mheap_.pages && precBegin() {
		precStr("a")
		precHex(uint64(npages))
		precHex(uint64(addr))
		precHex(uint64(scav))
		precEnd()
	}
	return addr, scav
}

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

func (p *pageAlloc) grow(base, size uintptr) {
	p.growUnrecorded(base, size)
	if p == &mheap_.pages && precBegin() {
		precStr("g")
		precHex(uint64(base))
		precHex(uint64(size))
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

func (c *pageCache) alloc(npages uintptr) (uintptr, uintptr) {
	base, scav := c.allocUnrecorded(npages)
	if precBegin() {
		precStr("ca")
		precHex(uint64(uintptr(unsafe.Pointer(c))))
		precHex(uint64(npages))
		precHex(uint64(base))
		precHex(uint64(scav))
		precEnd()
	}
	return base, scav
}

//go:systemstack
func (c *pageCache) flush(p *pageAlloc) {
	if p == &mheap_.pages && !c.empty() && precBegin() {
		precStr("fl")
		precHex(uint64(uintptr(unsafe.Pointer(c))))
		precEnd()
	}
	c.flushUnrecorded(p)
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

//go:systemstack
func (p *pageAlloc) scavengeOne(ci chunkIdx, searchIdx uint, max uintptr) uintptr {
	r := p.scavengeOneUnrecorded(ci, searchIdx, max)
	if p == &mheap_.pages && precBegin() {
		precStr("so")
		precHex(precGoid())
		precHex(uint64(ci))
		precHex(uint64(max))
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
