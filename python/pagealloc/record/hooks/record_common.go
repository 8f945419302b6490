//go:build linux

// pagealloc record: the log that `pagealloc record` reads.
//
// This file is not part of Go. `pagealloc record` adds it to the runtime
// package through `go build -overlay`, beside copies of the runtime's own
// files in which each hooked pageAlloc method was renamed to
// <name>Unrecorded; the version's hook file defines the old names again as
// wrappers that call the original and then log what it did.
//
// The log is text, one event per line, written into a static buffer and
// from there to PAGEALLOC_RECORD_DIR/<pid>.log. Why each choice:
//   - No allocation: the hooks run inside the page allocator, with the heap
//     lock held and on the system stack, where allocating would recurse
//     into the allocator or throw. Everything here is static.
//   - Lines are appended under precLock while the state they describe is
//     still locked (the heap lock for pageAlloc operations), so the order
//     of lines is the order of the state changes. A line is whole before
//     the buffer is written out, so a killed program leaves a log that is
//     whole up to its last flush.
//   - The environment is read only once the runtime has parsed it (the
//     first heap operations happen before that); until then lines wait in
//     the buffer. A binary built with the hooks but run without the
//     variable logs nothing.
//   - The final state (bounds, every grown chunk's bitmaps) is dumped at
//     exit so that the replay can be checked against the real run.
//   - Every line ends with two more fields: nanoseconds since the first
//     line (Go's monotonic clock) and the P that logged it plus one (0:
//     none).
//   - With more than one P, the scavenger's steps run partly without the
//     heap lock: the index's find is lock-free, and scavengeOne unlocks
//     while the OS releases the pages. Each part is logged where it takes
//     effect (sf after find, st when the run is taken, sg when it is given
//     back, se when a chunk is set empty), so the log keeps the real
//     interleaving. find is the one step whose outcome can depend on a
//     race: every state change find reads is bracketed as a write
//     (precWriteBegin before, precBeginWrite when it is logged), and a find
//     that overlapped a write or another find is logged as raced, with
//     what it returned and the cursor it left, for the replay to follow.

package runtime

import "unsafe"

const (
	precBufBytes = 1 << 20
	precLineMax  = 256

	precUndecided = 0
	precOn        = 1
	precOff       = 2
)

var precLock mutex

var prec struct {
	state   uint8
	exited  bool
	started bool
	fd      int32
	n       int
	t0      int64 // nanotime of the first line
	writing int32 // writes begun and not yet logged (find-visible state)
	writes  uint64 // writes begun
	finding int32  // finds in progress
	finds   uint64 // finds begun
	buf     [precBufBytes]byte
	path    [4096]byte
}

// precBegin locks the log and reports whether a line should be written;
// when it returns true the caller writes one line and calls precEnd.
func precBegin() bool {
	if prec.state == precOff {
		return false
	}
	lock(&precLock)
	return precOpen()
}

// precWriteBegin is called before a change of state that the scavenge
// index's lock-free find reads; the change's own log line is then begun
// with precBeginWrite, which ends the write.
func precWriteBegin() {
	if prec.state == precOff {
		return
	}
	lock(&precLock)
	prec.writing++
	prec.writes++
	unlock(&precLock)
}

// precWriteDone ends a write whose line was logged before it took effect.
func precWriteDone() {
	if prec.state == precOff {
		return
	}
	lock(&precLock)
	prec.writing--
	unlock(&precLock)
}

// precBeginWrite is precBegin for the line of a write precWriteBegin began.
func precBeginWrite() bool {
	if prec.state == precOff {
		return false
	}
	lock(&precLock)
	prec.writing--
	return precOpen()
}

// precFindBegin notes a find starting: what it may race with is counted
// from here.
func precFindBegin() (writes, finds uint64, busy bool) {
	if prec.state == precOff {
		return 0, 0, false
	}
	lock(&precLock)
	prec.finding++
	prec.finds++
	writes, finds, busy = prec.writes, prec.finds, prec.writing != 0
	unlock(&precLock)
	return
}

// precBeginFind is precBegin for a find's line; raced reports whether a
// write or another find overlapped it (or a write is still unlogged).
func precBeginFind(writes, finds uint64, busy bool) (ok, raced bool) {
	if prec.state == precOff {
		return false, false
	}
	lock(&precLock)
	raced = busy || prec.writing != 0 || prec.writes != writes || prec.finds != finds || prec.finding > 1
	prec.finding--
	return precOpen(), raced
}

// precOpen, with precLock held: whether a line should be written (when
// not, it unlocks).
func precOpen() bool {
	if prec.state == precUndecided {
		precDecide()
	}
	if prec.state == precOff || prec.exited {
		unlock(&precLock)
		return false
	}
	if !prec.started {
		prec.started = true
		prec.t0 = nanotime()
		precStr("H 1")
		precHex(uint64(physPageSize))
		precHex(uint64(physHugePageSize))
		precByte('\n')
	}
	return true
}

// precDecide opens the log once the environment is known.
func precDecide() {
	// goenvs makes the slice first and then fills it, allocating as it
	// goes: the environment is known once its last entry is.
	if len(envs) == 0 || envs[len(envs)-1] == "" {
		return
	}
	dir := gogetenv("PAGEALLOC_RECORD_DIR")
	if dir == "" || len(dir) > len(prec.path)-32 {
		prec.state = precOff
		prec.n = 0
		return
	}
	n := copy(prec.path[:], dir)
	prec.path[n] = '/'
	n++
	n += precDecimal(prec.path[n:], uint64(getpid()))
	n += copy(prec.path[n:], ".log")
	prec.path[n] = 0
	// O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC (Go 1.19's runtime has no names
	// for the middle two on every port).
	fd := open(&prec.path[0], 0x1|0x40|0x200|0x80000, 0o644)
	if fd < 0 {
		prec.state = precOff
		prec.n = 0
		print("pagealloc record: cannot create the log in ", dir, "\n")
		return
	}
	prec.fd = fd
	prec.state = precOn
}

func precEnd() {
	precHex(uint64(nanotime() - prec.t0))
	var pid uint64
	if mp := getg().m; mp != nil && mp.p != 0 {
		pid = uint64(mp.p.ptr().id) + 1
	}
	precHex(pid)
	precByte('\n')
	if prec.n > precBufBytes-precLineMax {
		precFlushLocked()
	}
	unlock(&precLock)
}

func precFlushLocked() {
	if prec.state != precOn {
		if prec.n > precBufBytes-precLineMax {
			// Still undecided with a full buffer: the environment never
			// came. Nothing can be kept.
			prec.state = precOff
			prec.n = 0
		}
		return
	}
	off := 0
	for off < prec.n {
		w := write1(uintptr(prec.fd), unsafe.Pointer(&prec.buf[off]), int32(prec.n-off))
		if w <= 0 {
			prec.state = precOff
			break
		}
		off += int(w)
	}
	prec.n = 0
}

func precByte(b byte) {
	prec.buf[prec.n] = b
	prec.n++
}

func precStr(s string) {
	prec.n += copy(prec.buf[prec.n:], s)
}

// precHex appends a space and v in hex.
func precHex(v uint64) {
	const digits = "0123456789abcdef"
	var tmp [16]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = digits[v&15]
		v >>= 4
		if v == 0 {
			break
		}
	}
	precByte(' ')
	prec.n += copy(prec.buf[prec.n:], tmp[i:])
}

func precDecimal(dst []byte, v uint64) int {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return copy(dst, tmp[i:])
}

// precGoid names the goroutine a scavenge call runs for (the user
// goroutine also when on the system stack): a call's steps are matched
// to it by this id.
func precGoid() uint64 {
	gp := getg().m.curg
	if gp == nil {
		return 0
	}
	return uint64(gp.goid)
}

// pageallocRecordCache logs a page cache just refilled by allocToCache
// (mheap.allocSpan, heap lock held): the cache's own address names it in
// later calloc and flush lines. The refill is a write (precWriteBegin is
// inserted before it).
func pageallocRecordCache(c *pageCache) {
	if precBeginWrite() {
		precStr("c")
		precHex(uint64(uintptr(unsafe.Pointer(c))))
		precHex(uint64(c.base))
		precHex(c.cache)
		precHex(c.scav)
		precEnd()
	}
}

// pageallocRecordExit dumps the final state and closes the log; it runs
// when main returns and in os.Exit (syscall.Exit).
func pageallocRecordExit() {
	if prec.state == precOff {
		return
	}
	systemstack(func() {
		lock(&mheap_.lock)
		p := &mheap_.pages
		if precBegin() {
			precStr("B")
			precHex(uint64(p.start))
			precHex(uint64(p.end))
			precEnd()
		}
		for _, r := range p.inUse.ranges {
			for ci := chunkIndex(r.base.addr()); ci <= chunkIndex(r.limit.addr()-1); ci++ {
				if !precBegin() {
					break
				}
				d := p.chunkOf(ci)
				precStr("C")
				precHex(uint64(ci))
				for _, w := range d.pallocBits {
					precHex(w)
				}
				for _, w := range d.scavenged {
					precHex(w)
				}
				precEnd()
			}
		}
		if precBegin() {
			precStr("X")
			precByte('\n')
			precFlushLocked()
			prec.exited = true
			if prec.state == precOn {
				closefd(prec.fd)
			}
			prec.state = precOff
			unlock(&precLock)
		}
		unlock(&mheap_.lock)
	})
}

// pageallocRecordFlush writes out what is buffered (a fatal panic is on
// its way: the log stays whole up to here).
func pageallocRecordFlush() {
	if prec.state != precOn {
		return
	}
	systemstack(func() {
		lock(&precLock)
		precFlushLocked()
		unlock(&precLock)
	})
}

// pageallocRecordScavRun logs a run of scavengeOne's (heap lock held):
// "st" when it was just taken in use to be released (the step's second
// part), "sg" when it was just given back, scavenged (the third).
func pageallocRecordScavRun(tag string, ci chunkIdx, base, npages uint) {
	if precBegin() {
		precStr(tag)
		precHex(precGoid())
		precHex(uint64(ci))
		precHex(uint64(base))
		precHex(uint64(npages))
		precEnd()
	}
}

// pageallocRecordScavEmpty logs scavengeOne finding nothing in chunk ci,
// which the index now skips (heap lock held; a write, begun just before).
func pageallocRecordScavEmpty(ci chunkIdx) {
	if precBeginWrite() {
		precStr("se")
		precHex(precGoid())
		precHex(uint64(ci))
		precEnd()
	}
}

func precBool(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
