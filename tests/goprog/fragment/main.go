// fragment keeps a long-lived cache of small buffers among many
// short-lived ones: the pattern of golang/go#78962, where a heap on
// linux/arm64 with 64 KiB pages held gigabytes more RSS than on 4 KiB
// pages. Each round allocates 8 KiB buffers (one page each, mostly
// adjacent) and keeps one in eight: every 64 KiB of the heap then holds
// one live page, which pins its whole physical page when pages are 64 KiB.
// `pagealloc whatif` on its recording shows the difference
// (docs/guides/whatif.md). A 64 MiB memory limit keeps the scavenger
// busy. Deterministic work; prints a checksum.
package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"time"
)

func main() {
	// A memory limit the live data fits in: the scavenger works to keep
	// the heap under it while the rounds run.
	debug.SetMemoryLimit(64 << 20)
	var keep [][]byte
	var sum uint64
	for round := 0; round < 4; round++ {
		batch := make([][]byte, 8192) // 64 MiB of 8 KiB buffers
		for i := range batch {
			b := make([]byte, 8192)
			b[0], b[8191] = byte(i), byte(round)
			batch[i] = b
		}
		for i := 0; i < len(batch); i += 8 {
			keep = append(keep, batch[i])
		}
		for _, b := range batch {
			sum += uint64(b[8191])
		}
		batch = nil
		runtime.GC()
		// Idle: the background scavenger returns what it can.
		time.Sleep(200 * time.Millisecond)
	}
	debug.FreeOSMemory()
	for _, b := range keep {
		sum += uint64(b[0])
	}
	fmt.Println("kept", len(keep), "buffers, checksum", sum)
}
