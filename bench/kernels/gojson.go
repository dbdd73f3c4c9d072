// The Go fuel-bench kernel (GOOS=wasip1, -buildmode=c-shared, run through node:wasi):
// generate n records, sort them, JSON-encode and decode them, hash the text, plus fib(20).
// Go puts every function in its table, so none of them can carry fuel in parameters.
package main

import (
	"encoding/json"
	"sort"
	"strconv"
)

type rec struct {
	ID    int      `json:"id"`
	Name  string   `json:"name"`
	Score float64  `json:"score"`
	Tags  []string `json:"tags"`
}

func fib(n int32) int32 {
	if n < 2 {
		return n
	}
	return fib(n-1) + fib(n-2)
}

//go:wasmexport run
func run(n int32) int32 {
	x := uint32(2463534242)
	recs := make([]rec, 0, n)
	for i := int32(0); i < n; i++ {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		recs = append(recs, rec{ID: int(i), Name: "r" + strconv.Itoa(int(x%1000)), Score: float64(x%10000) / 7, Tags: []string{"a", strconv.Itoa(int(x % 7))}})
	}
	sort.Slice(recs, func(a, b int) bool { return recs[a].Name < recs[b].Name })
	buf, _ := json.Marshal(recs)
	var back []rec
	if err := json.Unmarshal(buf, &back); err != nil {
		return -1
	}
	h := uint32(2166136261)
	for _, b := range buf {
		h = (h ^ uint32(b)) * 16777619
	}
	return int32(h) ^ int32(len(back)) ^ fib(20)
}

func main() {}
