package statefile

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"ringproxy/session"
)

// Whatever a state file holds (torn, garbage, hand-edited), Parse
// returns either lines within the ranges a server can take or an error
// naming the file and a line of it; never a panic, never part of a file
// it refused. The seeds (f.Add and testdata/fuzz/FuzzStateFile) run in
// make test.
func FuzzStateFile(f *testing.F) {
	for _, p := range []string{"../admin/testdata/haproxy-2.6.12-show-servers-state.txt", "../admin/testdata/haproxy-2.6.12-show-servers-state-maint.txt"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)-7]) // torn
	}
	f.Add([]byte(header + line("a", map[int]string{fAdminState: "8"}) + line("a", nil)))
	f.Add([]byte("1\n\n#\n \t\n"))
	f.Add([]byte("1"))
	f.Add([]byte(""))
	f.Add([]byte("1\n" + strings.Repeat("9 ", 25) + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("state", bytes.NewReader(data))
		if err != nil {
			var e *Error
			switch {
			case errors.Is(err, ErrEmpty):
				if len(data) != 0 {
					t.Fatalf("%q is not empty", data)
				}
			case !errors.As(err, &e):
				t.Fatalf("%v: not an *Error", err)
			case e.File != "state" || e.Line < 1 || e.Line > bytes.Count(data, []byte("\n"))+1:
				t.Fatalf("%v: names no line of the file", err)
			case file != nil:
				t.Fatal("a refused file returned lines")
			}
			return
		}
		if !bytes.HasPrefix(data, []byte("1\n")) {
			t.Fatalf("%q read without its version line", data)
		}
		seen := map[[2]string]bool{}
		for _, l := range file.Lines {
			s := l.Saved
			switch {
			case s.Backend == "" || s.Server == "":
				t.Fatalf("line %d: no name: %+v", l.Num, s)
			case s.Weight < 0 || s.Weight > 256 || s.InitWeight < 0 || s.InitWeight > 256:
				t.Fatalf("line %d: weight out of range: %+v", l.Num, s)
			case s.Admin != session.AdminReady && s.Admin != session.AdminDrain && s.Admin != session.AdminMaint:
				t.Fatalf("line %d: admin state %d", l.Num, s.Admin)
			case seen[[2]string{s.Backend, s.Server}]:
				t.Fatalf("line %d: %s/%s twice", l.Num, s.Backend, s.Server)
			}
			seen[[2]string{s.Backend, s.Server}] = true
		}
	})
}
