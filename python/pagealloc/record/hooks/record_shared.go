//go:build linux

// pagealloc record: the hooks whose Go signatures are the same in Go 1.19
// and Go 1.26 (see record_common.go); each version's own are in
// record_go<version>.go. Each wrapper calls the original, renamed
// <name>Unrecorded in the overlay's copy of its file, and logs what it
// did, still under the lock the original ran under.

package runtime

import "unsafe"

//go:systemstack
func (p *pageAlloc) alloc(npages uintptr) (addr uintptr, scav uintptr) {
	if p != &mheap_.pages {
		return p.allocUnrecorded(npages)
	}
	precWriteBegin()
	addr, scav = p.allocUnrecorded(npages)
	if precBeginWrite() {
		precStr("a")
		precHex(uint64(npages))
		precHex(uint64(addr))
		precHex(uint64(scav))
		precEnd()
	}
	return addr, scav
}

func (p *pageAlloc) grow(base, size uintptr) {
	if p != &mheap_.pages {
		p.growUnrecorded(base, size)
		return
	}
	precWriteBegin()
	p.growUnrecorded(base, size)
	if precBeginWrite() {
		precStr("g")
		precHex(uint64(base))
		precHex(uint64(size))
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
	if p != &mheap_.pages || c.empty() {
		c.flushUnrecorded(p)
		return
	}
	// Logged before the flush (the cache names itself only until then),
	// inside the write, which ends once the flush is done.
	precWriteBegin()
	if precBegin() {
		precStr("fl")
		precHex(uint64(uintptr(unsafe.Pointer(c))))
		precEnd()
	}
	c.flushUnrecorded(p)
	precWriteDone()
}
