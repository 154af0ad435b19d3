package session

import (
	"encoding/json"
	"testing"
)

// Formatting a line, either format, allocates nothing.
func TestAccessLineAllocatesNothing(t *testing.T) {
	w, _, s := fakeWorker(t)
	buf := make([]byte, 0, 1024)
	for _, json := range []bool{false, true} {
		if n := testing.AllocsPerRun(200, func() {
			f := w.logFields(s)
			if json {
				f.appendJSON(buf[:0])
			} else {
				f.appendTCPLog(buf[:0])
			}
		}); n != 0 {
			t.Errorf("json=%v: %.1f allocations a line", json, n)
		}
	}
}

// A name a client sent, with quotes, control bytes or invalid UTF-8,
// keeps the JSON line valid and reads back byte for byte (as Latin-1).
func TestJSONFieldEscapes(t *testing.T) {
	name := []byte("a\"b\\c\x01\xff.example.com")
	b := append([]byte("{"), appendJSONField(nil, "sni", name)[1:]...)
	b = append(b, '}')
	var got map[string]string
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	var back []byte
	for _, r := range got["sni"] {
		back = append(back, byte(r))
	}
	if string(back) != string(name) {
		t.Errorf("read back %q, want %q", back, name)
	}
}
