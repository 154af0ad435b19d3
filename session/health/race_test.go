//go:build race

package health

// raceEnabled skips allocation counts under -race, where sync.Pool (which
// regexp keeps its matchers in) drops what it is given at random.
const raceEnabled = true
