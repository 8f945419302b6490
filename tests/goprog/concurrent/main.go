// concurrent is the program `pagealloc record` is proven on with many Ps
// (tests/test_record.py, benches/record/gomaxprocs.sh): six goroutines
// allocate at once, under a memory limit tight enough that allocating
// goroutines scavenge while others allocate and free, with JSON and flate
// for many small spans, runtime.GC between rounds, an idle pause for the
// background scavenger and debug.FreeOSMemory at the end. Deterministic
// work for a seed (the interleaving is not: that is what the recorder
// captures); prints a checksum so that the work cannot be optimized away.
package main

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"fmt"
	"math/rand"
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

type item struct {
	ID   int       `json:"id"`
	Name string    `json:"name"`
	Vals []float64 `json:"vals"`
}

func worker(id, rounds int) uint64 {
	r := rand.New(rand.NewSource(int64(id)))
	var keep [][]byte
	var sum uint64
	for k := 0; k < rounds; k++ {
		// Buffers of 8 KiB to 5 MiB: spans of 1 to 640 pages.
		b := make([]byte, 8192+r.Intn(5<<20))
		for j := 0; j < len(b); j += 4096 {
			b[j] = byte(id + j)
		}
		sum += uint64(b[len(b)/2])
		if r.Intn(3) == 0 {
			keep = append(keep, b)
			if len(keep) > 4 {
				keep = keep[2:]
			}
		}
		// JSON and flate: many small objects and spans.
		items := make([]item, 50+r.Intn(200))
		for i := range items {
			items[i] = item{ID: i, Name: fmt.Sprintf("w%d-%d-%d", id, k, i), Vals: make([]float64, r.Intn(32))}
		}
		js, _ := json.Marshal(items)
		var z bytes.Buffer
		w, _ := flate.NewWriter(&z, flate.BestSpeed)
		w.Write(js)
		w.Close()
		sum += uint64(z.Len())
	}
	for _, b := range keep {
		sum += uint64(b[0])
	}
	return sum
}

func main() {
	debug.SetMemoryLimit(96 << 20)
	var total uint64
	for phase := 0; phase < 3; phase++ {
		var wg sync.WaitGroup
		sums := make([]uint64, 6)
		for id := 0; id < 6; id++ {
			wg.Add(1)
			go func(id int) {
				defer wg.Done()
				sums[id] = worker(id+6*phase, 40)
			}(id)
		}
		wg.Wait()
		for _, s := range sums {
			total += s
		}
		runtime.GC()
		// Idle: the background scavenger releases what the limit left.
		time.Sleep(300 * time.Millisecond)
	}
	debug.FreeOSMemory()
	fmt.Println("checksum", total)
}
