//go:build race

package balance

// raceEnabled trims the slowest sweeps under -race, to keep the run short.
const raceEnabled = true
