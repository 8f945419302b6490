package main

import (
	"math/rand"
	"testing"
)

// TestJSONRounds lets `pagealloc record -- go test` record a test binary.
func TestJSONRounds(t *testing.T) {
	if n := jsonRounds(rand.New(rand.NewSource(7)), 4, 500); n == 0 {
		t.Fatal("no JSON was written")
	}
}
