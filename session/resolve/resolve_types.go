package resolve

import (
	"errors"
	"net/netip"
	"time"
)

// Config is one resolvers section.
type Config struct {
	// Nameservers are asked in order; empty: those of /etc/resolv.conf
	// (FromResolvConf).
	Nameservers []netip.AddrPort
	Timeout     time.Duration // one query to one nameserver (HAProxy: timeout retry)
	Retries     int           // extra rounds over the nameservers after the first (HAProxy: resolve_retries - 1)
	HoldValid   time.Duration // a failing name keeps its last good answer this long
	HoldNX      time.Duration // an NXDOMAIN name keeps its last good answer this long
	TTLMin      time.Duration // re-resolve no sooner than this after an answer
	TTLMax      time.Duration // and no later than this, whatever the TTL says
	PayloadSize uint16        // EDNS0 UDP payload we accept (HAProxy: accepted_payload_size); 0: no EDNS0
}

// Defaults are HAProxy's resolvers defaults where it has them (hold
// valid 10s, hold nx 30s, timeout retry 1s, resolve_retries 3,
// accepted_payload_size 512), and a TTL range of 1s to 5m.
func Defaults() Config {
	return Config{Timeout: time.Second, Retries: 2, HoldValid: 10 * time.Second, HoldNX: 30 * time.Second,
		TTLMin: time.Second, TTLMax: 5 * time.Minute, PayloadSize: 512}
}

// Kind is what a Query asks for.
type Kind uint8

const (
	Host Kind = iota // A and AAAA of Name; every target gets Port
	SRV              // SRV records of Name (_service._proto.name): targets, ports, weights
)

// Query is one name to resolve.
type Query struct {
	Name string
	Kind Kind
	Port uint16 // Host: the port every address takes
}

// Target is one address an answer gives.
type Target struct {
	Addr     netip.AddrPort
	Host     string // the SRV target's name; Query.Name for a Host query
	Priority uint16 // SRV; 0 for Host
	Weight   uint16 // SRV; 0 for Host
}

// Answer is what a name resolves to now.
type Answer struct {
	Targets []Target      // sorted: SRV by priority then weight (higher first), then address
	TTL     time.Duration // the smallest TTL of the records used
	At      time.Time     // when it was received
}

// Errors a resolution ends with (wrapped with the name and nameserver).
var (
	ErrNXDomain = errors.New("no such name (NXDOMAIN)")
	ErrNoRecord = errors.New("the name has no record of that type")
	ErrTimeout  = errors.New("no answer in time")
	ErrRefused  = errors.New("the nameserver failed or refused")
)

// Event is what a Watch reports: the answer a name holds now (the last
// good one while a hold lasts), or none and why once the hold is over.
type Event struct {
	Query  Query
	Answer Answer
	Err    error // nil while Answer is good or held; else why the name has no address
	Held   bool  // Answer is the last good one, kept through Err'd resolutions
}
