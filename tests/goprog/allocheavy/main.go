// allocheavy is the program of our own that `pagealloc record` is proven
// on (tests/test_record.py): it exercises every path of the page
// allocator a real program takes. Large buffers (spans of many pages,
// grows), JSON (many small spans through the page caches), a memory limit
// (the allocating goroutine scavenges, cut short by the CPU limiter), an
// idle second (the background scavenger), a GOMAXPROCS change (page caches
// of the Ps that go away are flushed) and debug.FreeOSMemory (scavenge
// everything). Deterministic for a seed; prints a checksum so that the
// work cannot be optimized away.
package main

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"runtime"
	"runtime/debug"
	"time"
)

type record struct {
	ID    int               `json:"id"`
	Name  string            `json:"name"`
	Tags  []string          `json:"tags"`
	Attrs map[string]string `json:"attrs"`
	Data  []float64         `json:"data"`
}

var sink [][]byte

func buffers(r *rand.Rand, n, maxMiB int) uint64 {
	var sum uint64
	for i := 0; i < n; i++ {
		b := make([]byte, (1+r.Intn(maxMiB))<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = byte(i + j)
		}
		sum += uint64(b[len(b)/2])
		if r.Intn(3) == 0 {
			sink = append(sink, b)
		}
		if len(sink) > 6 {
			sink = sink[len(sink)-3:]
		}
	}
	return sum
}

func jsonRounds(r *rand.Rand, rounds, records int) uint64 {
	var sum uint64
	for k := 0; k < rounds; k++ {
		recs := make([]record, records)
		for i := range recs {
			recs[i] = record{ID: i, Name: fmt.Sprintf("record-%d-%d", k, i),
				Tags: []string{"a", "bb", fmt.Sprint(r.Intn(100))}, Attrs: map[string]string{"k": fmt.Sprint(i)},
				Data: make([]float64, r.Intn(64))}
		}
		out, err := json.Marshal(recs)
		if err != nil {
			panic(err)
		}
		var back []record
		if err := json.Unmarshal(out, &back); err != nil {
			panic(err)
		}
		sum += uint64(len(out) + len(back))
	}
	return sum
}

func main() {
	r := rand.New(rand.NewSource(1))
	var sum uint64
	sum += buffers(r, 40, 16)
	sum += jsonRounds(r, 20, 2000)

	// Under a memory limit the allocator scavenges as it allocates.
	debug.SetMemoryLimit(96 << 20)
	sum += buffers(r, 40, 24)
	debug.SetMemoryLimit(math.MaxInt64)

	// An idle second: the background scavenger returns what is free.
	sink = nil
	runtime.GC()
	time.Sleep(time.Second)

	// More Ps and back: the page caches of the Ps that go away are
	// flushed. Two goroutines allocate at once, each through its P's page
	// cache. The scavenger is the one part of the allocator that drops the
	// heap lock in the middle of an operation, so while two Ps run it must
	// have nothing to do for the replay to stay exact: everything is
	// scavenged first and the GC (whose pacing wakes the scavenger) is off.
	debug.FreeOSMemory()
	gcPercent := debug.SetGCPercent(-1)
	prev := runtime.GOMAXPROCS(2)
	done := make(chan uint64)
	for w := 0; w < 2; w++ {
		go func(seed int64) { done <- jsonRounds(rand.New(rand.NewSource(seed)), 6, 500) }(int64(w))
	}
	sum += <-done + <-done
	runtime.GOMAXPROCS(prev)
	debug.SetGCPercent(gcPercent)
	sum += jsonRounds(r, 5, 1000)

	sink = nil
	debug.FreeOSMemory()
	sum += buffers(r, 10, 8)
	fmt.Println("checksum", sum)
	if len(os.Args) > 1 && os.Args[1] == "exit3" {
		os.Exit(3)
	}
}
