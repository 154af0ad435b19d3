package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// errCause returns what err wraps, so that an *Error keeps the library
// error (time, netip, strconv) as its cause.
func errCause(err error) error { return errors.Unwrap(err) }

func parseDuration(s string, positive bool) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Errorf("bad duration %q: %w", s, err)
	case d < 0:
		return 0, fmt.Errorf("bad duration %q: must not be negative", s)
	case positive && d == 0:
		return 0, fmt.Errorf("bad duration %q: must be greater than 0", s)
	}
	return d, nil
}

var sizeUnits = map[string]int64{"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}

// parseSizeValue accepts an integer number of bytes or a string with a
// binary unit. Decimal units (KB, MB) are refused rather than guessed.
func parseSizeValue(v any) (int64, error) {
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return 0, fmt.Errorf("bad size %d: must not be negative", v)
		}
		return v, nil
	case string:
		return parseSize(v)
	}
	return 0, fmt.Errorf("expected a size (integer bytes or a string like \"16KiB\"), got %s", typeName(v))
}

func parseSize(s string) (int64, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	unit := strings.TrimSpace(s[i:])
	mult, ok := sizeUnits[unit]
	if i == 0 || !ok {
		return 0, fmt.Errorf("bad size %q: want digits and an optional unit B, KiB, MiB or GiB", s)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("bad size %q: too large", s)
	}
	return n * mult, nil
}

// formatSize prints n with the largest binary unit that divides it.
func formatSize(n int64) string {
	for _, u := range []struct {
		name string
		mult int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// parseAddr parses "ip:port" ("[ipv6]:port" for IPv6). Hostnames are
// refused: resolving them would make the config depend on DNS at load
// time, and the data path never resolves anything.
func parseAddr(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err == nil {
		return ap, nil
	}
	if host, _, serr := net.SplitHostPort(s); serr == nil {
		if _, aerr := netip.ParseAddr(host); aerr != nil {
			return netip.AddrPort{}, fmt.Errorf("bad address %q: must be an IP literal (host:port, IPv6 in brackets)", s)
		}
	}
	return netip.AddrPort{}, fmt.Errorf("bad address %q: %w", s, err)
}
