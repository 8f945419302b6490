// Part of the pagealloc project's benchmark harness: what Go 1.26's
// pageAlloc calls look like (see pagealloc_harness_internal_test.go).

package runtime

// HarnessTraceVersion is the trace format this Go's behaviour defines
// (besides v1).
const HarnessTraceVersion = 3

// harnessFree: Go 1.21 and later's free has no scavenged flag.
func harnessFree(p *pageAlloc, base, npages uintptr) {
	p.free(base, npages)
}

// harnessScavenge is scavenge(nbytes, nil, force): forced as Go's test
// export PageAlloc.Scavenge, or the background scavenger's.
func harnessScavenge(p *pageAlloc, nbytes uintptr, force bool) uintptr {
	return p.scavenge(nbytes, nil, force)
}

func harnessNextGen(p *pageAlloc) {
	p.scav.index.nextGen()
}

func harnessPad(p *pageAlloc, base, npages uintptr) {
	p.markRandomPaddingPages(base, npages)
}

// harnessInit is NewPageAlloc's initialisation of a test pageAlloc.
func harnessInit(p *pageAlloc, mheapLock *mutex) {
	p.init(mheapLock, testSysStat, true)
}

// harnessWorld is what starting the world again needs.
type harnessWorld = worldStop

// harnessStopTheWorld stops the world, with no GC running, until
// harnessStartTheWorld.
func harnessStopTheWorld() harnessWorld {
	return stopTheWorldGC(stwForTestCountPagesInUse)
}

func harnessStartTheWorld(w harnessWorld) {
	startTheWorldGC(w)
}
