package config

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Error is one problem found in a config file. Parse returns them joined
// (errors.Join), so callers can errors.As each one; Error() is the
// one-line message an operator reads.
type Error struct {
	File string
	Line int    // 0 when no line could be found
	Key  string // display path, e.g. "frontend[0] (web).bind"; may be empty
	Msg  string
	Err  error // cause, if any
}

func (e *Error) Error() string {
	where := e.File
	if e.Line > 0 {
		where += ":" + strconv.Itoa(e.Line)
	}
	if e.Key == "" {
		return where + ": " + oneLine(e.Msg)
	}
	return where + ": " + e.Key + ": " + oneLine(e.Msg)
}

// oneLine keeps a report at one line per problem even when the TOML
// library quotes a raw newline from the input.
func oneLine(s string) string {
	return strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(s)
}

func (e *Error) Unwrap() error { return e.Err }

// maxErrors bounds the report: past a few dozen problems the file is
// probably not a ringproxy config at all.
const maxErrors = 20

// problems collects every error of one Parse call.
type problems struct {
	file string
	loc  *locator
	list []*Error
	// stateFile: [global] state_file is set, which init_addr "last"
	// needs (read before the backends).
	stateFile bool
}

// add records a problem at the indexed path at (used to find the line),
// shown to the operator as key.
func (p *problems) add(at, key string, cause error, format string, args ...any) {
	line := 0
	if p.loc != nil {
		line = p.loc.lineOf(at)
	}
	p.list = append(p.list, &Error{File: p.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...), Err: cause})
}

// err returns the problems ordered by line (line-less ones last, in the
// order found) as one error, or nil.
func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	sort.SliceStable(p.list, func(i, j int) bool {
		return lineKey(p.list[i]) < lineKey(p.list[j])
	})
	var errs []error
	for i, e := range p.list {
		if i == maxErrors {
			errs = append(errs, fmt.Errorf("%s: ... and %d more problems", p.file, len(p.list)-i))
			break
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

func lineKey(e *Error) int {
	if e.Line == 0 {
		return int(^uint(0) >> 1)
	}
	return e.Line
}
