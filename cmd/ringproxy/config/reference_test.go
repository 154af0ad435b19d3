package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// The configuration reference, docs/CONFIG.md, must name every key the
// loader reads and no other. The loader keeps no list of its keys: a
// table marks a key known as a reader asks for it and reports the rest
// as unknown (table.go). So the keys are found by asking the loader:
// each candidate is put, in turn, in each section of a document where
// every reader runs, and the candidates it does not call unknown are its
// keys. Candidates are every key-like string literal of this package's
// sources, where a reader names its keys, and every key the reference
// names. A key whose name the loader built at run time, and which the
// reference lacks, would go unseen.

const referencePath = "../../../docs/CONFIG.md"

// referenceBase holds every section the loader reads, so that each
// reader runs: [admin] and [backend.check] are read only when present,
// and the keys of a frontend that only routes use only with a route.
const referenceBase = `
[global]
[log]
[admin]
[[frontend]]
name = "web"
bind = ["127.0.0.1:0"]
backend = "app"
  [[frontend.route]]
  sni = ["a.example.com"]
  backend = "app"
[[backend]]
name = "app"
  [backend.check]
  [[backend.server]]
  name = "s"
  address = "127.0.0.1:1"
`

// schemaSection is one table of the schema, as the loader reads it.
type schemaSection struct {
	plain string   // TOML spelling without indices: "frontend.route"; "" is the root
	path  []string // keys from the root
	adds  []added  // sections referenceBase lacks, added before probing
}

// added is an empty section put at path.key of a document.
type added struct {
	path []string
	key  string
	val  any // map[string]any{} or []map[string]any{{}}
}

// doc decodes referenceBase with sec's additions and returns it with the
// table of sec (the first element of each array of tables on the way).
func (sec schemaSection) doc(t *testing.T) (map[string]any, map[string]any) {
	t.Helper()
	var doc map[string]any
	if _, err := toml.Decode(referenceBase, &doc); err != nil {
		t.Fatalf("referenceBase: %v", err)
	}
	for _, a := range sec.adds {
		tableAt(t, doc, a.path)[a.key] = a.val
	}
	return doc, tableAt(t, doc, sec.path)
}

func tableAt(t *testing.T, doc map[string]any, path []string) map[string]any {
	t.Helper()
	m := doc
	for _, k := range path {
		switch v := m[k].(type) {
		case map[string]any:
			m = v
		case []map[string]any:
			m = v[0]
		default:
			t.Fatalf("referenceBase: %s is not a table", strings.Join(path, "."))
		}
	}
	return m
}

// emptySection is the empty value of the same kind as v, when v is a
// table or an array of tables.
func emptySection(v any) (any, bool) {
	switch v.(type) {
	case map[string]any:
		return map[string]any{}, true
	case []map[string]any:
		return []map[string]any{{}}, true
	}
	return nil, false
}

func (sec schemaSection) child(key string, a *added) schemaSection {
	c := schemaSection{plain: joinPath(sec.plain, key), path: append(slices.Clone(sec.path), key), adds: slices.Clone(sec.adds)}
	if a != nil {
		c.adds = append(c.adds, *a)
	}
	return c
}

// loaderSchema returns, by section, the keys the loader reads: the
// sections' own keys (tables among them) included.
func loaderSchema(t *testing.T, candidates []string) map[string][]string {
	t.Helper()
	schema := map[string][]string{}
	queue := []schemaSection{{}}
	for len(queue) > 0 {
		sec := queue[0]
		queue = queue[1:]
		doc, m := sec.doc(t)
		pr := &problems{file: "t.toml"}
		build(pr, doc)
		if msgs := unknownKeys(pr); len(msgs) > 0 {
			t.Fatalf("referenceBase, section %q: %v", sec.plain, msgs)
		}
		var keys []string
		for k, v := range m {
			keys = append(keys, k)
			if _, ok := emptySection(v); ok {
				queue = append(queue, sec.child(k, nil))
			}
		}
		for _, k := range candidates {
			if _, present := m[k]; present {
				continue
			}
			known, sub := probeKey(t, sec, k)
			if !known {
				continue
			}
			keys = append(keys, k)
			if sub != nil {
				queue = append(queue, sec.child(k, &added{path: sec.path, key: k, val: sub}))
			}
		}
		sort.Strings(keys)
		schema[sec.plain] = keys
	}
	return schema
}

// probeKey puts k = "x" in sec and says whether the loader knows k there
// and, when k must be a table or an array of tables, an empty one.
func probeKey(t *testing.T, sec schemaSection, k string) (bool, any) {
	doc, m := sec.doc(t)
	m[k] = "x"
	pr := &problems{file: "t.toml"}
	build(pr, doc)
	plain := joinPath(sec.plain, k)
	for _, e := range pr.list {
		for _, what := range []string{"unknown key ", "unknown table "} {
			if rest, ok := strings.CutPrefix(e.Msg, what+plain); ok && (rest == "" || rest[0] == ' ') {
				return false, nil
			}
		}
	}
	for _, e := range pr.list {
		if e.Key != plain && !strings.HasSuffix(e.Key, "."+k) {
			continue
		}
		switch {
		case strings.HasPrefix(e.Msg, "expected table"):
			return true, map[string]any{}
		case strings.HasPrefix(e.Msg, "expected [["):
			return true, []map[string]any{{}}
		}
	}
	return true, nil
}

func unknownKeys(pr *problems) []string {
	var out []string
	for _, e := range pr.list {
		if strings.HasPrefix(e.Msg, "unknown ") {
			out = append(out, e.Msg)
		}
	}
	return out
}

var keyLike = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// sourceLiterals returns the key-like string literals of the package's
// non-test sources.
func sourceLiterals(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && keyLike.MatchString(s) {
					seen[s] = true
				}
			}
			return true
		})
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// documented is what the reference names: its sections (headings like
// "## `[[frontend.route]]`") and, by section, the keys its tables have a
// row for ("| `bind` | ...").
type documented struct {
	sections map[string]bool
	keys     map[string][]string
}

var (
	docHeading = regexp.MustCompile("^## `\\[\\[?([a-z0-9_.]+)\\]\\]?`")
	docRow     = regexp.MustCompile("^\\| `([a-z0-9_]+)` \\|")
)

func parseReference(text string) documented {
	d := documented{sections: map[string]bool{}, keys: map[string][]string{}}
	sec := ""
	for _, line := range strings.Split(text, "\n") {
		if m := docHeading.FindStringSubmatch(line); m != nil {
			sec = m[1]
			d.sections[sec] = true
		} else if strings.HasPrefix(line, "## ") {
			sec = "" // a section of prose: its tables name no keys
		} else if m := docRow.FindStringSubmatch(line); m != nil && sec != "" {
			d.keys[sec] = append(d.keys[sec], m[1])
		}
	}
	return d
}

// referenceGaps compares the loader's schema with the reference: a
// section needs a heading, any other key a row in its section's table
// (a section may have one too), and the reference names nothing the
// loader does not read.
func referenceGaps(schema map[string][]string, doc documented) []string {
	var gaps []string
	for _, sec := range sortedKeys(schema) {
		for _, k := range schema[sec] {
			plain := joinPath(sec, k)
			if _, isSection := schema[plain]; isSection {
				if !doc.sections[plain] {
					gaps = append(gaps, "no heading for section ["+plain+"], which the loader reads")
				}
			} else if !slices.Contains(doc.keys[sec], k) {
				gaps = append(gaps, "no row for key "+k+" in section ["+sec+"], which the loader reads")
			}
		}
	}
	for _, sec := range sortedKeys(doc.keys) {
		for _, k := range doc.keys[sec] {
			if !slices.Contains(schema[sec], k) {
				gaps = append(gaps, "a row for key "+k+" in section ["+sec+"], which the loader does not read")
			}
		}
	}
	for sec := range doc.sections {
		if _, ok := schema[sec]; !ok {
			gaps = append(gaps, "a heading for section ["+sec+"], which the loader does not read")
		}
	}
	sort.Strings(gaps)
	return gaps
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestReferenceListsEveryKey(t *testing.T) {
	text, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatal(err)
	}
	doc := parseReference(string(text))
	candidates := sourceLiterals(t)
	for _, keys := range doc.keys {
		candidates = append(candidates, keys...)
	}
	for sec := range doc.sections {
		candidates = append(candidates, sec[strings.LastIndexByte(sec, '.')+1:])
	}
	sort.Strings(candidates)
	schema := loaderSchema(t, slices.Compact(candidates))
	// The walk itself must have found the schema: a probe that called
	// everything known or nothing known would pass vacuously.
	for sec, want := range map[string]string{"": "frontend", "global": "maxconn", "frontend": "route", "frontend.route": "sni", "backend.check": "rise", "backend.server": "weight"} {
		if !slices.Contains(schema[sec], want) {
			t.Fatalf("the loader's section [%s] has no key %s: the probe is broken; found %v", sec, want, schema)
		}
	}
	if slices.Contains(schema["global"], "uring") {
		t.Fatalf("a value (uring) was taken for a key of [global]: the probe is broken")
	}
	t.Logf("the loader's schema: %v", schema)
	gaps := referenceGaps(schema, doc)
	for _, gap := range gaps {
		t.Errorf("docs/CONFIG.md: %s", gap)
	}
	if len(gaps) > 0 {
		t.Log("a key is a row \"| `key` | type | default | meaning; refused values | HAProxy |\" in the table under its section's heading \"## `[section]`\"")
	}
}

// referenceGaps names what is missing either way.
func TestReferenceGapsNameBothWays(t *testing.T) {
	schema := map[string][]string{"": {"global", "frontend"}, "global": {"maxconn", "workers"}, "frontend": {"name", "route"}, "frontend.route": {"sni"}}
	doc := parseReference("## `[global]`\n| `maxconn` | x |\n| `stale` | x |\n## `[[frontend]]`\n| `name` | x |\n## `[resolvers]`\n## Prose\n| `notakey` | x |\n")
	want := []string{
		"a heading for section [resolvers], which the loader does not read",
		"a row for key stale in section [global], which the loader does not read",
		"no heading for section [frontend.route], which the loader reads",
		"no row for key sni in section [frontend.route], which the loader reads",
		"no row for key workers in section [global], which the loader reads",
	}
	if got := referenceGaps(schema, doc); !slices.Equal(got, want) {
		t.Errorf("gaps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
