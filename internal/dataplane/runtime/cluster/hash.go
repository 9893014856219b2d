package cluster

import (
	"encoding/binary"
	"math"
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// ringEntry is one point of a hash ring.
type ringEntry struct {
	hash uint64
	host uint32 // index into the view's hosts
}

// buildRing builds a RING_HASH ring as Envoy does: each host gets a number
// of points proportional to its weight, the host with the smallest weight
// at least minimum_ring_size × its share (rounded up), the whole ring at
// most maximum_ring_size points. A point's hash is that of
// "<address>_<n>", so equal hosts give equal rings on every proxy.
func buildRing(hosts []*host, weights []uint32, cfg *lbConfig) []ringEntry {
	if len(hosts) == 0 {
		return nil
	}
	var sum, minW float64
	minW = math.MaxFloat64
	for _, w := range weights {
		sum += float64(w)
		minW = min(minW, float64(w))
	}
	minNorm := minW / sum
	scale := min(math.Ceil(minNorm*float64(cfg.ringMin))/minNorm, float64(cfg.ringMax))
	ring := make([]ringEntry, 0, int(scale)+len(hosts))
	var target, current float64
	for i, h := range hosts {
		target += scale * float64(weights[i]) / sum
		n := 0
		for current < target || n == 0 {
			key := h.addr + "_" + strconv.Itoa(n)
			var hv uint64
			if cfg.murmur {
				hv = murmur2([]byte(key), murmurSeed)
			} else {
				hv = xxhash.Sum64String(key)
			}
			ring = append(ring, ringEntry{hash: hv, host: uint32(i)})
			current++
			n++
		}
	}
	slices.SortFunc(ring, func(a, b ringEntry) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return int(a.host) - int(b.host)
	})
	return ring
}

// ringLookup returns the host of the first point at or after key,
// wrapping around.
func ringLookup(ring []ringEntry, key uint64) uint32 {
	i, _ := slices.BinarySearchFunc(ring, key, func(e ringEntry, k uint64) int {
		switch {
		case e.hash < k:
			return -1
		case e.hash > k:
			return 1
		}
		return 0
	})
	if i == len(ring) {
		i = 0
	}
	return ring[i].host
}

// buildMaglev fills a Maglev lookup table of size m (a prime): each host
// walks its own permutation of the slots (offset and skip from two hashes
// of its address) and takes the next free slot in turn; a host takes
// turns in proportion to its weight, so that its share of the table is
// its share of the weight.
func buildMaglev(hosts []*host, weights []uint32, m uint64) []uint32 {
	if len(hosts) == 0 {
		return nil
	}
	n := len(hosts)
	offset := make([]uint64, n)
	skip := make([]uint64, n)
	next := make([]uint64, n)
	var maxW float64
	for i, h := range hosts {
		offset[i] = xxhash.Sum64String(h.addr) % m
		skip[i] = xxhash.Sum64String(h.addr+"\x00skip")%(m-1) + 1
		maxW = max(maxW, float64(weights[i]))
	}
	const empty = math.MaxUint32
	table := make([]uint32, m)
	for i := range table {
		table[i] = empty
	}
	placed := make([]float64, n)
	filled := uint64(0)
	for iter := 1; filled < m; iter++ {
		for i := 0; i < n && filled < m; i++ {
			if placed[i] >= float64(iter)*float64(weights[i])/maxW {
				continue
			}
			for {
				c := (offset[i] + next[i]*skip[i]) % m
				next[i]++
				if table[c] == empty {
					table[c] = uint32(i)
					break
				}
			}
			placed[i]++
			filled++
		}
	}
	return table
}

// murmurSeed is the seed of Envoy's MURMUR_HASH_2 ring hash.
const murmurSeed = 0xc70f6907

// murmur2 is the 64-bit MurmurHash2 (MurmurHash64A).
func murmur2(data []byte, seed uint64) uint64 {
	const m = 0xc6a4a7935bd1e995
	const r = 47
	h := seed ^ uint64(len(data))*m
	for len(data) >= 8 {
		k := binary.LittleEndian.Uint64(data)
		k *= m
		k ^= k >> r
		k *= m
		h ^= k
		h *= m
		data = data[8:]
	}
	if len(data) > 0 {
		var tail [8]byte
		copy(tail[:], data)
		h ^= binary.LittleEndian.Uint64(tail[:])
		h *= m
	}
	h ^= h >> r
	h *= m
	h ^= h >> r
	return h
}
