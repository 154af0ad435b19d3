// Package config owns turning a TOML file into a validated
// *session.Config: it applies defaults, resolves references (frontend to
// backend, workers = 0 to the CPU count) and rejects anything it cannot
// vouch for, including options the data path does not implement yet, so
// that no key parses and then silently does nothing.
//
// It must never start anything, open sockets or resolve names: `ringproxy
// check` runs it on a live host next to a running proxy.
package config

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/BurntSushi/toml"

	"ringproxy/session"
)

//go:embed default.toml
var defaultConfig []byte

// Default returns the commented example configuration shipped with the
// binary. It parses with Parse.
func Default() []byte {
	return append([]byte(nil), defaultConfig...)
}

// Load reads and parses the config file at path.
func Load(path string) (*session.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse parses and validates data; name is the file name used in error
// messages ("name:line: ..."). On failure the error lists every problem
// found, one per line, each an *Error.
func Parse(name string, data []byte) (*session.Config, error) {
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		return nil, syntaxError(name, err)
	}
	pr := &problems{file: name, loc: newLocator(string(data))}
	c := build(pr, doc)
	if err := pr.err(); err != nil {
		return nil, err
	}
	return c, nil
}

func syntaxError(name string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		msg := strings.ReplaceAll(pe.Message, `'\x00'`, "end of file")
		return &Error{File: name, Line: pe.Position.Line, Msg: msg, Err: err}
	}
	return &Error{File: name, Msg: err.Error(), Err: err}
}
