package session

import (
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"ringproxy/session/testbed"
)

// With [log].target = "syslog", each access line is one syslog message,
// facility daemon and severity info (<30>), tagged ringproxy.
func TestAccessLogToSyslog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.sock")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	defer func(saved string) { SyslogPath = saved }(SyslogPath)
	SyslogPath = path

	p, err := New(syslogConfig(testbed.StartEcho(t).Addr()), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(time.Second)
	for range 2 {
		c, err := net.Dial("tcp", p.Addrs("web")[0].String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("ping"))
		c.Read(make([]byte, 4))
		c.Close()
	}
	buf := make([]byte, 4096)
	for i := range 2 {
		sock.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, err := sock.Read(buf)
		if err != nil {
			t.Fatalf("syslog message %d: %v", i, err)
		}
		msg := string(buf[:n])
		if !syslogLocal.MatchString(msg) || !strings.Contains(msg, " web app/s1 ") || strings.Count(msg, "\n") != 1 {
			t.Errorf("syslog message %d = %q; want one <30> ringproxy line for web app/s1", i, msg)
		}
	}
}

// syslogLocal is log/syslog's format for the local socket, which
// journald and rsyslog parse: priority, an RFC 3164 stamp, tag[pid].
var syslogLocal = regexp.MustCompile(`^<30>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d ringproxy\[\d+\]: \S`)

func syslogConfig(server netip.AddrPort) *Config {
	be := &Backend{Name: "app", Balance: "roundrobin", TimeoutConnect: time.Second, TimeoutServer: time.Minute, Retries: 1,
		Servers: []*Server{{Name: "s1", Address: server, Weight: 100}}}
	fe := &Frontend{Name: "web", Binds: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}, Backend: be, TimeoutClient: time.Minute}
	return &Config{Global: Global{Engine: "uring", Workers: 1, MaxConn: 16, MaxAccept: 4, BufSize: 16 << 10, Grace: time.Second},
		Log: Log{Level: "info", Access: true, Target: "syslog"}, Frontends: []*Frontend{fe}, Backends: []*Backend{be}}
}

// Without a syslog socket Start fails, and says which path and why
// rather than log/syslog's "Unix syslog delivery error".
func TestAccessLogToMissingSyslog(t *testing.T) {
	defer func(saved string) { SyslogPath = saved }(SyslogPath)
	SyslogPath = filepath.Join(t.TempDir(), "no-log")
	p, err := New(syslogConfig(netip.MustParseAddrPort("127.0.0.1:1")), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	err = p.Start()
	if want := "access log to syslog: " + SyslogPath + ": no such file or directory"; err == nil || err.Error() != want {
		p.Shutdown(0)
		t.Fatalf("Start: %v, want %q", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%v does not wrap ENOENT", err)
	}
}

// A syslog daemon that restarts replaces its socket: the next line goes
// to the new one.
func TestSyslogReconnects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.sock")
	listen := func() *net.UnixConn {
		sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		return sock
	}
	defer func(saved string) { SyslogPath = saved }(SyslogPath)
	SyslogPath = path
	first := listen()
	w, err := DialSyslog()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	first.Close()
	os.Remove(path)
	second := listen()
	defer second.Close()
	if _, err := w.Write([]byte("after the restart\n")); err != nil {
		t.Fatalf("write after the daemon restarted: %v", err)
	}
	buf := make([]byte, 512)
	second.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, err := second.Read(buf)
	if err != nil || !strings.HasSuffix(string(buf[:n]), "ringproxy["+strconv.Itoa(os.Getpid())+"]: after the restart\n") {
		t.Fatalf("new socket got %q, %v", buf[:n], err)
	}
}
