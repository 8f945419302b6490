// Part of the pagealloc project's benchmark harness (see
// pagealloc_harness_internal_test.go). Driven by environment variables:
//
//	PAGEALLOC_HARNESS=scenarios PAGEALLOC_CHURN=churn-mixed.trace PAGEALLOC_REPS=N
//	    prints "go_ns_per_op NAME N" for the five SCENARIOS.md scenarios
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
	chunkBytes = 4 << 20
	harnessBase = 0x3000000000
)

func parseTrace(t *testing.T, path string) (ops []HarnessOp, nallocs int) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
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
		switch f[0] {
		case "grow":
			ops = append(ops, HarnessOp{Kind: 0, A: num(f[1]), B: num(f[2])})
		case "alloc":
			ops = append(ops, HarnessOp{Kind: 1, A: num(f[1])})
			nallocs++
		case "free":
			ops = append(ops, HarnessOp{Kind: 2, A: num(f[1])})
		default:
			t.Fatalf("%s:%d: unknown op %q", path, n+1, f[0])
		}
	}
	return
}

func countAllocs(ops []HarnessOp) (n int) {
	for _, op := range ops {
		if op.Kind == 1 {
			n++
		}
	}
	return
}

type splitmix64 uint64

func (s *splitmix64) next() uint64 {
	*s += 0x9E3779B97F4A7C15
	z := uint64(*s)
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// scenario is one SCENARIOS.md scenario as ops, the timed window and the
// number of timed units (allocs, pairs, ops or grows).
type scenario struct {
	name     string
	ops      []HarnessOp
	from, to int
	units    int
}

func grow(chunks uintptr) HarnessOp { return HarnessOp{Kind: 0, A: harnessBase, B: chunks * chunkBytes} }
func alloc(n uintptr) HarnessOp     { return HarnessOp{Kind: 1, A: n} }
func free(k int) HarnessOp          { return HarnessOp{Kind: 2, A: uintptr(k)} }

func scenarios(t *testing.T) []scenario {
	var s []scenario
	// a. alloc1-exhaust: 32768 x alloc(1) on 64 chunks, then one failing alloc.
	ops := []HarnessOp{grow(64)}
	for i := 0; i < 32768; i++ {
		ops = append(ops, alloc(1))
	}
	ops = append(ops, alloc(1))
	s = append(s, scenario{"a_alloc1_exhaust", ops, 1, 32769, 32768})
	// b. alloc-free-1: first half full, then 200000 x {alloc(1), free}.
	ops = []HarnessOp{grow(64), alloc(16384)}
	for i := 0; i < 200000; i++ {
		ops = append(ops, alloc(1), free(i+1))
	}
	s = append(s, scenario{"b_alloc_free_1_pair", ops, 2, len(ops), 200000})
	// c. churn-mixed: the trace; its grow is set-up.
	churn := os.Getenv("PAGEALLOC_CHURN")
	ops, _ = parseTrace(t, churn)
	s = append(s, scenario{"c_churn_mixed", ops, 1, len(ops), len(ops) - 1})
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
	s = append(s, scenario{"d_sparse_find", ops, from, from + 1024, 1024})
	// e. grow: 4096 one-chunk grows, then one alloc of the whole heap.
	ops = nil
	for i := uintptr(0); i < 4096; i++ {
		ops = append(ops, HarnessOp{Kind: 0, A: harnessBase + i*chunkBytes, B: chunkBytes})
	}
	ops = append(ops, alloc(1<<21))
	s = append(s, scenario{"e_grow", ops, 0, 4096, 4096})
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
			n := countAllocs(sc.ops)
			addrs, sizes := make([]uintptr, n), make([]uintptr, n)
			var per []float64
			for r := 0; r < reps; r++ {
				ns, pp, bad := HarnessReplay(sc.ops, sc.from, sc.to, addrs, sizes)
				FreePageAlloc(pp)
				if bad >= 0 {
					t.Fatalf("%s: op %d frees a failed alloc", sc.name, bad)
				}
				per = append(per, float64(ns)/float64(sc.units))
			}
			checkScenario(t, sc.name, addrs)
			sort.Float64s(per)
			fmt.Printf("go_ns_per_op %s %.1f\n", sc.name, per[len(per)/2])
		}
	case "traces":
		for _, path := range strings.Split(os.Getenv("PAGEALLOC_TRACES"), ",") {
			ops, n := parseTrace(t, path)
			addrs, sizes := make([]uintptr, n), make([]uintptr, n)
			_, pp, bad := HarnessReplay(ops, 0, len(ops), addrs, sizes)
			if bad >= 0 {
				t.Fatalf("%s: op %d frees a failed alloc", path, bad)
			}
			if err := os.WriteFile(path+".go-results", []byte(HarnessResults(pp, addrs)), 0o644); err != nil {
				t.Fatal(err)
			}
			FreePageAlloc(pp)
		}
	default:
		t.Skip("set PAGEALLOC_HARNESS=scenarios or traces")
	}
}

// checkScenario asserts the SCENARIOS.md result checks (untimed).
func checkScenario(t *testing.T, name string, addrs []uintptr) {
	switch name {
	case "a_alloc1_exhaust":
		for i := 0; i < 32768; i++ {
			if addrs[i] != harnessBase+uintptr(i)*8192 {
				t.Fatalf("%s: alloc %d = %#x", name, i, addrs[i])
			}
		}
		if addrs[32768] != 0 {
			t.Fatalf("%s: final alloc succeeded", name)
		}
	case "b_alloc_free_1_pair":
		for i := 1; i < len(addrs); i++ {
			if addrs[i] != 0x3008000000 {
				t.Fatalf("%s: alloc %d = %#x", name, i, addrs[i])
			}
		}
	case "d_sparse_find":
		if addrs[len(addrs)-1] != 0 {
			t.Fatalf("%s: final alloc(1) succeeded", name)
		}
	case "e_grow":
		if addrs[0] != harnessBase {
			t.Fatalf("%s: alloc(2^21) = %#x", name, addrs[0])
		}
	}
}
