// Part of the pagealloc project's benchmark harness (see
// pagealloc_harness_internal_test.go). Driven by environment variables:
//
//	PAGEALLOC_HARNESS=scenarios PAGEALLOC_CHURN=churn-mixed.trace PAGEALLOC_REPS=N
//	    prints "go_ns_per_op NAME N" for the six benchmark scenarios (docs/benchmarks.md)
//	PAGEALLOC_HARNESS=traces PAGEALLOC_TRACES=a.trace,b.trace
//	    replays each trace and writes TRACE.go-results

package runtime_test

import (
	"fmt"
	"os"
	. "runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const (
	chunkBytes  = 4 << 20
	harnessBase = 0x3000000000
)

// harnessTrace is a parsed trace with the room its replay needs (v2 is
// set for v2 and v3 traces, whose results are alike; version says which).
type harnessTrace struct {
	ops                    []HarnessOp
	v2                     bool
	version                uintptr
	phys, huge             uintptr // the physpage and hugepage headers
	nallocs, ncaches, nout int
}

func (tr *harnessTrace) add(op HarnessOp) {
	tr.ops = append(tr.ops, op)
	switch op.Kind {
	case 1, 5:
		tr.nallocs++
	case 4:
		tr.ncaches++
	}
	tr.nout += HarnessOutWords(op.Kind, tr.v2)
}

// replay runs the trace on a fresh pageAlloc; the caller frees pp.
func (tr *harnessTrace) replay(from, to int) (ns int64, pp *PageAlloc, bad int, out []uintptr) {
	addrs, sizes := make([]uintptr, tr.nallocs), make([]uintptr, tr.nallocs)
	out = make([]uintptr, tr.nout)
	phys, huge := tr.phys, tr.huge
	if phys == 0 {
		phys, huge = 4096, 2<<20
	}
	ns, pp, bad = HarnessReplay(tr.ops, from, to, tr.v2, phys, huge, addrs, sizes, tr.ncaches, out)
	return
}

var opKinds = map[string]struct {
	kind  uint8
	nargs int
}{
	"grow": {0, 2}, "alloc": {1, 1}, "free": {2, 1},
	"scavenge": {3, 1}, "cache": {4, 0}, "calloc": {5, 2}, "flush": {6, 1},
	"nextgen": {7, 0}, "pad": {8, 2},
}

func parseTrace(t *testing.T, path string) *harnessTrace {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tr := &harnessTrace{}
	for n, line := range strings.Split(string(data), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		num := func(s string) uintptr {
			v, err := strconv.ParseUint(s, 0, 64)
			if err != nil {
				t.Fatalf("%s:%d: %v", path, n+1, err)
			}
			return uintptr(v)
		}
		if f[0] == "version" && len(f) == 2 && len(tr.ops) == 0 {
			tr.version = num(f[1])
			if tr.version != HarnessTraceVersion && tr.version != 1 {
				t.Fatalf("%s:%d: a v%d trace; this Go replays v1 and v%d", path, n+1, tr.version, HarnessTraceVersion)
			}
			tr.v2 = tr.version >= 2
			continue
		}
		// The machine headers, right after `version`.
		if (f[0] == "physpage" || f[0] == "hugepage") && len(f) == 2 && tr.v2 && len(tr.ops) == 0 {
			if tr.phys == 0 {
				tr.phys, tr.huge = 4096, 2<<20
			}
			if f[0] == "physpage" {
				tr.phys = num(f[1])
			} else {
				tr.huge = num(f[1])
			}
			continue
		}
		// `scavenge N bg`: the background scavenger (v3).
		bg := f[0] == "scavenge" && len(f) == 3 && f[2] == "bg" && tr.version >= 3
		if bg {
			f = f[:2]
		}
		k, ok := opKinds[f[0]]
		if !ok || len(f) != 1+k.nargs || (k.kind >= 3 && !tr.v2) || (k.kind >= 7 && tr.version < 3) {
			t.Fatalf("%s:%d: bad op line %q", path, n+1, line)
		}
		op := HarnessOp{Kind: k.kind}
		if bg {
			op.B = 1
		}
		if k.nargs > 0 {
			op.A = num(f[1])
		}
		if k.nargs > 1 {
			op.B = num(f[2])
		}
		tr.add(op)
	}
	return tr
}

type splitmix64 uint64

func (s *splitmix64) next() uint64 {
	*s += 0x9E3779B97F4A7C15
	z := uint64(*s)
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// scenario is one benchmark scenario (docs/benchmarks.md) as a trace, the timed window and
// the number of timed units (allocs, pairs, ops, grows or pages).
type scenario struct {
	name     string
	tr       *harnessTrace
	from, to int
	units    int
}

func grow(chunks uintptr) HarnessOp {
	return HarnessOp{Kind: 0, A: harnessBase, B: chunks * chunkBytes}
}
func alloc(n uintptr) HarnessOp { return HarnessOp{Kind: 1, A: n} }
func free(k int) HarnessOp      { return HarnessOp{Kind: 2, A: uintptr(k)} }

func harnessBuild(v2 bool, ops []HarnessOp) *harnessTrace {
	tr := &harnessTrace{v2: v2}
	for _, op := range ops {
		tr.add(op)
	}
	return tr
}

func scenarios(t *testing.T) []scenario {
	var s []scenario
	// a. alloc1-exhaust: 32768 x alloc(1) on 64 chunks, then one failing alloc.
	ops := []HarnessOp{grow(64)}
	for i := 0; i < 32768; i++ {
		ops = append(ops, alloc(1))
	}
	ops = append(ops, alloc(1))
	s = append(s, scenario{"a_alloc1_exhaust", harnessBuild(false, ops), 1, 32769, 32768})
	// b. alloc-free-1: first half full, then 200000 x {alloc(1), free}.
	ops = []HarnessOp{grow(64), alloc(16384)}
	for i := 0; i < 200000; i++ {
		ops = append(ops, alloc(1), free(i+1))
	}
	s = append(s, scenario{"b_alloc_free_1_pair", harnessBuild(false, ops), 2, len(ops), 200000})
	// c. churn-mixed: the trace; its grow is set-up.
	churn := parseTrace(t, os.Getenv("PAGEALLOC_CHURN"))
	s = append(s, scenario{"c_churn_mixed", churn, 1, len(churn.ops), len(churn.ops) - 1})
	// d. sparse-find: one 3-page hole per chunk, then 1024 x alloc(3).
	ops = []HarnessOp{grow(1024)}
	rng := splitmix64(42)
	k := 0
	var holes []int
	for c := 0; c < 1024; c++ {
		off := 1 + rng.next()%508
		ops = append(ops, alloc(uintptr(off)), alloc(3), alloc(uintptr(509-off)))
		holes = append(holes, k+1)
		k += 3
	}
	for _, h := range holes {
		ops = append(ops, free(h))
	}
	from := len(ops)
	for c := 0; c < 1024; c++ {
		ops = append(ops, alloc(3))
	}
	ops = append(ops, alloc(1))
	s = append(s, scenario{"d_sparse_find", harnessBuild(false, ops), from, from + 1024, 1024})
	// e. grow: 4096 one-chunk grows, then one alloc of the whole heap.
	ops = nil
	for i := uintptr(0); i < 4096; i++ {
		ops = append(ops, HarnessOp{Kind: 0, A: harnessBase + i*chunkBytes, B: chunkBytes})
	}
	ops = append(ops, alloc(1<<21))
	s = append(s, scenario{"e_grow", harnessBuild(false, ops), 0, 4096, 4096})
	// f. cache-alloc1: 512 x {allocToCache, 64 x pageCache.alloc(1)}, then
	// one more allocToCache (empty).
	ops = []HarnessOp{grow(64)}
	for c := uintptr(0); c < 512; c++ {
		ops = append(ops, HarnessOp{Kind: 4})
		for i := 0; i < 64; i++ {
			ops = append(ops, HarnessOp{Kind: 5, A: c, B: 1})
		}
	}
	ops = append(ops, HarnessOp{Kind: 4})
	s = append(s, scenario{"f_cache_alloc1", harnessBuild(true, ops), 1, len(ops) - 1, 512 * 64})
	return s
}

func TestPageallocHarness(t *testing.T) {
	switch os.Getenv("PAGEALLOC_HARNESS") {
	case "scenarios":
		reps, _ := strconv.Atoi(os.Getenv("PAGEALLOC_REPS"))
		if reps < 1 {
			reps = 7
		}
		for _, sc := range scenarios(t) {
			var per []float64
			var out []uintptr
			for r := 0; r < reps; r++ {
				ns, pp, bad, o := sc.tr.replay(sc.from, sc.to)
				FreePageAlloc(pp)
				if bad >= 0 {
					t.Fatalf("%s: op %d frees a failed alloc", sc.name, bad)
				}
				per = append(per, float64(ns)/float64(sc.units))
				out = o
			}
			checkScenario(t, sc.name, out)
			sort.Float64s(per)
			fmt.Printf("go_ns_per_op %s %.1f\n", sc.name, per[len(per)/2])
		}
	case "traces":
		for _, path := range strings.Split(os.Getenv("PAGEALLOC_TRACES"), ",") {
			tr := parseTrace(t, path)
			_, pp, bad, out := tr.replay(0, len(tr.ops))
			if bad >= 0 {
				t.Fatalf("%s: op %d frees a failed allocation", path, bad)
			}
			res := HarnessResults(pp, tr.ops, tr.v2, out)
			if err := os.WriteFile(path+".go-results", []byte(res), 0o644); err != nil {
				t.Fatal(err)
			}
			FreePageAlloc(pp)
		}
	default:
		t.Skip("set PAGEALLOC_HARNESS=scenarios or traces")
	}
}

// checkScenario asserts the scenario's result checks (untimed) on the
// result words (v1: one address per alloc; f, a v2 trace: each cache's
// base, bits and scav bits, then an address and scav bytes per calloc).
func checkScenario(t *testing.T, name string, out []uintptr) {
	switch name {
	case "a_alloc1_exhaust":
		for i := 0; i < 32768; i++ {
			if out[i] != harnessBase+uintptr(i)*8192 {
				t.Fatalf("%s: alloc %d = %#x", name, i, out[i])
			}
		}
		if out[32768] != 0 {
			t.Fatalf("%s: final alloc succeeded", name)
		}
	case "b_alloc_free_1_pair":
		for i := 1; i < len(out); i++ {
			if out[i] != 0x3008000000 {
				t.Fatalf("%s: alloc %d = %#x", name, i, out[i])
			}
		}
	case "d_sparse_find":
		if out[len(out)-1] != 0 {
			t.Fatalf("%s: final alloc(1) succeeded", name)
		}
	case "e_grow":
		if out[0] != harnessBase {
			t.Fatalf("%s: alloc(2^21) = %#x", name, out[0])
		}
	case "f_cache_alloc1":
		o := 0
		for c := uintptr(0); c < 512; c++ {
			if out[o] != harnessBase+c*64*8192 || out[o+1] != ^uintptr(0) || out[o+2] != ^uintptr(0) {
				t.Fatalf("%s: cache %d = %#x %#x %#x", name, c, out[o], out[o+1], out[o+2])
			}
			o += 3
			for i := uintptr(0); i < 64; i++ {
				if out[o] != harnessBase+(c*64+i)*8192 {
					t.Fatalf("%s: cache %d alloc %d = %#x", name, c, i, out[o])
				}
				o += 2
			}
		}
		if out[o+1] != 0 {
			t.Fatalf("%s: the last cache is not empty", name)
		}
	}
}
