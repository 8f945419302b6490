// Part of the pagealloc project's benchmark harness: what Go 1.19's
// pageAlloc calls look like (see pagealloc_harness_internal_test.go).

package runtime

// HarnessTraceVersion is the trace format this Go's behaviour defines
// (besides v1).
const HarnessTraceVersion = 2

// harnessFree is mheap.freeSpanLocked's free: never of scavenged pages.
func harnessFree(p *pageAlloc, base, npages uintptr) {
	p.free(base, npages, false)
}

// harnessScavenge is Go 1.19's only scavenge; it has no background kind.
func harnessScavenge(p *pageAlloc, nbytes uintptr, force bool) uintptr {
	if !force {
		throw("pagealloc harness: Go 1.19 has no background scavenge in its pageAlloc")
	}
	return p.scavenge(nbytes, nil)
}

func harnessNextGen(p *pageAlloc) {
	throw("pagealloc harness: Go 1.19's scavenge index has no generations")
}

func harnessPad(p *pageAlloc, base, npages uintptr) {
	throw("pagealloc harness: Go 1.19 has no markRandomPaddingPages")
}

// harnessInit is NewPageAlloc's initialisation of a test pageAlloc.
func harnessInit(p *pageAlloc, mheapLock *mutex) {
	p.init(mheapLock, testSysStat)
	p.test = true
}

// harnessWorld is what starting the world again needs (Go 1.19: nothing).
type harnessWorld struct{}

// harnessStopTheWorld stops the world, with no GC running, until
// harnessStartTheWorld.
func harnessStopTheWorld() harnessWorld {
	stopTheWorldGC("pagealloc harness: another machine's page sizes")
	return harnessWorld{}
}

func harnessStartTheWorld(harnessWorld) {
	startTheWorldGC()
}
