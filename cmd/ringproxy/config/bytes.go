package config

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Bytes a check sends or expects: text with escapes, or hex.

// unescape reads the escapes of a check's text, HAProxy's in tcp-check
// lines: \r \n \t \\ and \xHH (any byte). They come on top of TOML's own,
// so a literal string ('PING\r\n') spells them as HAProxy users write
// them, and "\\x00" in a basic string is a NUL. Any other backslash is
// refused rather than kept, since it is most likely a typo.
func unescape(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i+1 == len(s) {
			return nil, errors.New("ends in a lone backslash (write \\\\ for one)")
		}
		i++
		switch s[i] {
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case '\\':
			out = append(out, '\\')
		case 'x':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return nil, fmt.Errorf("bad escape %q: \\x wants two hex digits", s[i-1:min(i+3, len(s))])
			}
			out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			return nil, fmt.Errorf("unknown escape \\%c (want \\r, \\n, \\t, \\\\ or \\xHH)", s[i])
		}
	}
	return out, nil
}

// parseHex reads bytes written in hex, two digits a byte, in groups
// separated by spaces or tabs for legibility: "00000008 04d2162f". A
// group of an odd number of digits is refused: which digit would stand
// alone is a guess.
func parseHex(s string) ([]byte, error) {
	out := make([]byte, 0, len(s)/2)
	for i := 0; i < len(s); {
		if s[i] == ' ' || s[i] == '\t' {
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] != ' ' && s[j] != '\t' {
			if !isHex(s[j]) {
				r, _ := utf8.DecodeRuneInString(s[j:])
				return nil, fmt.Errorf("%q is not a hex digit", r)
			}
			j++
		}
		if (j-i)%2 != 0 {
			return nil, fmt.Errorf("group %q has an odd number of digits", s[i:j])
		}
		for ; i < j; i += 2 {
			out = append(out, unhex(s[i])<<4|unhex(s[i+1]))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no hex digits")
	}
	return out, nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
