package config

import (
	"strconv"
	"strings"
)

// locator maps key paths to the line that defines them. BurntSushi/toml
// keeps key positions private and folds every [[array]] element onto one
// entry, so errors about frontend[1] would name frontend[0]'s line; this
// scanner re-reads the (already validated) source and records the first
// line of every key, indexed the way the schema walk names it:
// "backend[1].server[0].address".
//
// It only ever runs on text the TOML parser accepted, but it must not
// panic on anything: on a construct it does not follow it simply stops,
// and lookups fall back to the nearest enclosing table or to no line.
type locator struct {
	src   string
	pos   int
	line  int
	table string         // indexed path of the current [table]
	lines map[string]int // indexed path -> first line
	aot   map[string]int // indexed path of an [[array]] -> elements seen
}

func newLocator(src string) *locator {
	l := &locator{src: src, line: 1, lines: map[string]int{}, aot: map[string]int{}}
	l.scan()
	return l
}

// lineOf returns the line of path or of its nearest recorded ancestor,
// 0 if none.
func (l *locator) lineOf(path string) int {
	for path != "" {
		if n, ok := l.lines[path]; ok {
			return n
		}
		path = parentPath(path)
	}
	return 0
}

// parentPath strips the last ".key" or "[i]" from an indexed path.
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i > 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

func (l *locator) scan() {
	for l.skipBlank() {
		var ok bool
		if l.peek(0) == '[' {
			ok = l.header()
		} else {
			ok = l.keyValue()
		}
		if !ok {
			return
		}
		l.skipLine()
	}
}

func (l *locator) peek(off int) byte {
	if l.pos+off < len(l.src) {
		return l.src[l.pos+off]
	}
	return 0
}

func (l *locator) advance() {
	if l.pos < len(l.src) {
		if l.src[l.pos] == '\n' {
			l.line++
		}
		l.pos++
	}
}

// skipBlank skips whitespace, newlines and comments; false at EOF.
func (l *locator) skipBlank() bool {
	for l.pos < len(l.src) {
		switch l.src[l.pos] {
		case ' ', '\t', '\r', '\n':
			l.advance()
		case '#':
			l.skipLine()
		default:
			return true
		}
	}
	return false
}

func (l *locator) skipSpace() {
	for c := l.peek(0); c == ' ' || c == '\t'; c = l.peek(0) {
		l.pos++
	}
}

// skipLine moves to the next newline; after a value only a comment may
// follow, so nothing there is worth reading.
func (l *locator) skipLine() {
	for l.pos < len(l.src) && l.src[l.pos] != '\n' {
		l.pos++
	}
}

func (l *locator) header() bool {
	line := l.line
	array := l.peek(1) == '['
	l.pos++
	if array {
		l.pos++
	}
	keys, ok := l.key()
	if !ok || l.peek(0) != ']' {
		return false
	}
	l.table = l.resolve(keys, array)
	l.record(l.table, line)
	return true
}

// resolve turns a header's dotted key into an indexed path: parts that
// name an [[array]] refer to its latest element, and a [[header]] opens a
// new element.
func (l *locator) resolve(keys []string, array bool) string {
	cur := ""
	for i, k := range keys {
		cur = joinPath(cur, k)
		if array && i == len(keys)-1 {
			l.aot[cur]++
		}
		if n, ok := l.aot[cur]; ok {
			cur += "[" + strconv.Itoa(n-1) + "]"
		}
	}
	return cur
}

func (l *locator) keyValue() bool {
	line := l.line
	keys, ok := l.key()
	if !ok || l.peek(0) != '=' {
		return false
	}
	p := l.table
	for _, k := range keys {
		p = joinPath(p, k)
		l.record(p, line)
	}
	l.pos++
	l.skipSpace()
	return l.skipValue()
}

func (l *locator) record(path string, line int) {
	if _, ok := l.lines[path]; !ok {
		l.lines[path] = line
	}
}

// key reads a dotted key and the blanks after it.
func (l *locator) key() ([]string, bool) {
	var keys []string
	for {
		l.skipSpace()
		k, ok := l.keyPart()
		if !ok {
			return nil, false
		}
		keys = append(keys, k)
		l.skipSpace()
		if l.peek(0) != '.' {
			return keys, true
		}
		l.pos++
	}
}

func (l *locator) keyPart() (string, bool) {
	switch l.peek(0) {
	case '"':
		return l.basicString()
	case '\'':
		return l.literalString()
	}
	start := l.pos
	for isBare(l.peek(0)) {
		l.pos++
	}
	return l.src[start:l.pos], l.pos > start
}

func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// basicString reads a one-line "..." string and returns it unescaped
// (as far as strconv understands TOML escapes; close enough for keys).
func (l *locator) basicString() (string, bool) {
	start := l.pos
	l.pos++
	for l.pos < len(l.src) {
		switch l.src[l.pos] {
		case '\\':
			l.pos += 2
		case '\n':
			return "", false
		case '"':
			l.pos++
			raw := l.src[start:l.pos]
			if s, err := strconv.Unquote(raw); err == nil {
				return s, true
			}
			return raw[1 : len(raw)-1], true
		default:
			l.pos++
		}
	}
	return "", false
}

func (l *locator) literalString() (string, bool) {
	l.pos++
	end := strings.IndexAny(l.src[l.pos:], "'\n")
	if end < 0 || l.src[l.pos+end] != '\'' {
		return "", false
	}
	s := l.src[l.pos : l.pos+end]
	l.pos += end + 1
	return s, true
}

// skipValue steps over one value, counting the lines inside multi-line
// strings and arrays so that later keys get the right line.
func (l *locator) skipValue() bool {
	switch {
	case strings.HasPrefix(l.src[l.pos:], `"""`):
		return l.skipMultiline(`"""`, true)
	case strings.HasPrefix(l.src[l.pos:], `'''`):
		return l.skipMultiline(`'''`, false)
	case l.peek(0) == '"':
		_, ok := l.basicString()
		return ok
	case l.peek(0) == '\'':
		_, ok := l.literalString()
		return ok
	case l.peek(0) == '[' || l.peek(0) == '{':
		return l.skipNested()
	}
	return true // a scalar: the rest of the line is skipped by scan
}

func (l *locator) skipMultiline(delim string, escapes bool) bool {
	l.pos += len(delim)
	for l.pos < len(l.src) {
		switch {
		case escapes && l.src[l.pos] == '\\':
			l.advance()
			l.advance()
		case strings.HasPrefix(l.src[l.pos:], delim):
			l.pos += len(delim)
			// Up to two quotes may end the content right before the delimiter.
			for i := 0; i < 2 && l.peek(0) == delim[0]; i++ {
				l.pos++
			}
			return true
		default:
			l.advance()
		}
	}
	return false
}

// skipNested steps over an array or inline table, nested to any depth.
func (l *locator) skipNested() bool {
	depth := 0
	for l.skipBlank() {
		switch c := l.peek(0); c {
		case '[', '{':
			depth++
			l.pos++
		case ']', '}':
			depth--
			l.pos++
			if depth == 0 {
				return true
			}
		case '"', '\'':
			if !l.skipValue() {
				return false
			}
		default:
			l.pos++
		}
	}
	return false
}

// joinPath appends key k to an indexed path, quoting it the way TOML
// would need it so that a key containing a dot cannot fake a nesting.
func joinPath(p, k string) string {
	if !isBareKey(k) {
		k = strconv.Quote(k)
	}
	if p == "" {
		return k
	}
	return p + "." + k
}

func isBareKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isBare(k[i]) {
			return false
		}
	}
	return true
}
