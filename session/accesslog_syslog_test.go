package session

import (
	"io"
	"log/slog"
	"log/syslog"
	"net"
	"net/netip"
	"path/filepath"
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
	saved := openSyslog
	openSyslog = func() (io.Writer, error) {
		return syslog.Dial("unixgram", path, syslog.LOG_INFO|syslog.LOG_DAEMON, "ringproxy")
	}
	defer func() { openSyslog = saved }()

	echo := testbed.StartEcho(t)
	be := &Backend{Name: "app", Balance: "roundrobin", TimeoutConnect: time.Second, TimeoutServer: time.Minute, Retries: 1,
		Servers: []*Server{{Name: "s1", Address: echo.Addr(), Weight: 100}}}
	fe := &Frontend{Name: "web", Binds: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}, Backend: be, TimeoutClient: time.Minute}
	cfg := &Config{Global: Global{Engine: "uring", Workers: 1, MaxConn: 16, MaxAccept: 4, BufSize: 16 << 10, Grace: time.Second},
		Log: Log{Level: "info", Access: true, Target: "syslog"}, Frontends: []*Frontend{fe}, Backends: []*Backend{be}}
	p, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
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
		if !strings.HasPrefix(msg, "<30>") || !strings.Contains(msg, " ringproxy[") ||
			!strings.Contains(msg, " web app/s1 ") || strings.Count(strings.TrimSuffix(msg, "\n"), "\n") != 0 {
			t.Errorf("syslog message %d = %q; want one <30> ringproxy line for web app/s1", i, msg)
		}
	}
}
