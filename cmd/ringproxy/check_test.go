package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"ringproxy/session/admin"
	"ringproxy/session/testbed"
)

// bindConfig writes a config of frontend web on binds, with the admin
// socket at sock and the stats listener on stats when they are set, and
// global, if not "", as [global]'s body. It returns the file's path.
func bindConfig(t *testing.T, sock string, stats netip.AddrPort, global string, binds ...netip.AddrPort) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[global]\nworkers = 1\n%s\n[log]\naccess = false\n[admin]\n", global)
	if sock != "" {
		fmt.Fprintf(&b, "socket = %q\n", sock)
	}
	if stats.IsValid() {
		fmt.Fprintf(&b, "stats = %q\n", stats)
	}
	quoted := make([]string, len(binds))
	for i, a := range binds {
		quoted[i] = strconv.Quote(a.String())
	}
	fmt.Fprintf(&b, "[[frontend]]\nname = \"web\"\nbind = [%s]\nbackend = \"app\"\n", strings.Join(quoted, ", "))
	b.WriteString("[[backend]]\nname = \"app\"\n[[backend.server]]\nname = \"s1\"\naddress = \"127.0.0.1:9\"\n")
	f, err := os.CreateTemp(t.TempDir(), "*.toml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(b.String()); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// runFails runs `ringproxy run -c path` in this process, through wrap,
// and returns its stderr; a run that serves instead is stopped and fails
// the test.
func runFails(t *testing.T, path string, wrap func(func() error) error) string {
	t.Helper()
	type result struct {
		errOut string
		code   int
	}
	done := make(chan result, 1)
	go func() {
		wrap(func() error {
			_, errOut, code := runMain("run", "-c", path)
			done <- result{errOut, code}
			return nil
		})
	}()
	select {
	case r := <-done:
		if r.code != 1 {
			t.Errorf("run -c %s: exit %d", path, r.code)
		}
		return r.errOut
	case <-time.After(10 * time.Second):
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		<-done
		t.Fatalf("run -c %s served: check --bind-test fails it", path)
	}
	return ""
}

func direct(f func() error) error { return f() }

// check --bind-test fails where run would, with run's message: an
// address not on this host, one in use by another program or another
// ringproxy, a stats address in use, a privileged port.
func TestCheckFailsWhereRunWould(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0") // a program that is not ringproxy
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyAddr := netip.MustParseAddrPort(busy.Addr().String())

	// Another ringproxy, with an admin socket of its own, on theirs.
	dir := t.TempDir()
	theirs := freePort(t)
	otherSock := filepath.Join(dir, "other.sock")
	done := serveFile(t, bindConfig(t, otherSock, netip.AddrPort{}, "", theirs))
	defer stopServe(t, done)
	waitAdmin(t, otherSock, done)

	mine := filepath.Join(dir, "mine.sock") // nothing serves it: no ringproxy of this config runs
	notLocal := netip.MustParseAddrPort("10.255.0.1:80")
	for _, c := range []struct {
		name   string
		path   string
		want   string
		noCaps bool // as a user without CAP_NET_BIND_SERVICE
	}{
		{"not local", bindConfig(t, mine, netip.AddrPort{}, "", notLocal),
			"ringproxy: frontend web: bind 10.255.0.1:80: cannot assign requested address\n", false},
		{"another program", bindConfig(t, mine, netip.AddrPort{}, "", freePort(t), busyAddr),
			fmt.Sprintf("ringproxy: frontend web: bind %s: address already in use\n", busyAddr), false},
		{"another ringproxy", bindConfig(t, mine, netip.AddrPort{}, "", theirs),
			fmt.Sprintf("ringproxy: frontend web: bind %s: address already in use by another process (set reuseport_share = true in [global] to share it)\n", theirs), false},
		{"stats in use", bindConfig(t, mine, busyAddr, "", freePort(t)),
			fmt.Sprintf("ringproxy: admin stats: bind %s: address already in use\n", busyAddr), false},
		{"privileged port", bindConfig(t, mine, netip.AddrPort{}, "", netip.MustParseAddrPort("127.0.0.1:1")),
			"ringproxy: frontend web: bind 127.0.0.1:1: permission denied\n", true},
	} {
		wrap := direct
		if c.noCaps {
			wrap = testbed.WithoutBindCapability
		}
		var checkOut, checkErr string
		var code int
		if err := wrap(func() error {
			checkOut, checkErr, code = runMain("check", "--bind-test", "-c", c.path)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		runErr := runFails(t, c.path, wrap)
		if code != 1 || checkOut != "" || checkErr != c.want {
			t.Errorf("%s: check --bind-test: exit %d, stdout %q, stderr %q; want exit 1, stderr %q", c.name, code, checkOut, checkErr, c.want)
		}
		if runErr != c.want {
			t.Errorf("%s: run says %q, check %q", c.name, runErr, c.want)
		}
	}

	// Without --bind-test check binds nothing.
	if out, errOut, code := runMain("check", "-c", bindConfig(t, mine, busyAddr, "", notLocal, theirs)); code != 0 || errOut != "" || strings.Contains(out, "bind test") {
		t.Errorf("check without --bind-test: exit %d, stderr %q\n%s", code, errOut, out)
	}
}

// The systemd unit runs check while this config's ringproxy runs: the
// addresses it holds pass, found through the admin socket the config
// names, and the reload that follows works. Without an admin socket,
// check cannot tell it from another process, and says so.
func TestCheckBindTestPassesWhatItsRunningProxyHolds(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "admin.sock")
	a := testbed.FreeAddrs(t, 2)
	web, stats := a[0], a[1]
	path := bindConfig(t, sock, stats, "", web)
	done := serveFile(t, path)
	defer stopServe(t, done)
	waitAdmin(t, sock, done)

	out, errOut, code := runMain("check", "--bind-test", "-c", path)
	held := fmt.Sprintf("held by this config's running ringproxy (pid %d, admin socket %s): a reload takes it over\n", os.Getpid(), sock)
	for _, want := range []string{
		"bind test: frontend web: bind " + web.String() + ": " + held,
		"bind test: admin stats " + stats.String() + ": " + held,
		path + ": OK\n",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("check --bind-test beside its running ringproxy: exit %d, stderr %q, stdout lacks %q:\n%s", code, errOut, want, out)
		}
	}
	if out, err := admin.Send(sock, "reload"); err != nil || out != "reloaded\n" {
		t.Errorf("the reload after the check: %q, %v", out, err)
	}

	// The same addresses, no admin socket: passes, saying what it cannot tell.
	out, errOut, code = runMain("check", "--bind-test", "-c", bindConfig(t, "", stats, "", web))
	noSock := "the config names no [admin] socket, by which check would know its running ringproxy"
	for _, want := range []string{
		"bind test: frontend web: bind " + web.String() + ": in use by a SO_REUSEPORT listener of this user: " + noSock +
			"; run refuses it unless it is this config's ringproxy reloading, or reuseport_share = true\n",
		"bind test: admin stats " + stats.String() + ": in use, not tested: " + noSock + "\n",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("check --bind-test without an admin socket: exit %d, stderr %q, stdout lacks %q:\n%s", code, errOut, want, out)
		}
	}

	// Another config on the same address, with reuseport_share: shared.
	out, errOut, code = runMain("check", "--bind-test", "-c", bindConfig(t, filepath.Join(dir, "other.sock"), netip.AddrPort{}, "reuseport_share = true", web))
	if want := "bind test: frontend web: bind " + web.String() + ": in use by another process's SO_REUSEPORT listener: shared (reuseport_share = true)\n"; code != 0 || !strings.Contains(out, want) {
		t.Errorf("check --bind-test with reuseport_share: exit %d, stderr %q, stdout lacks %q:\n%s", code, errOut, want, out)
	}
}

func TestParseProcAddr(t *testing.T) {
	for in, want := range map[string]string{
		"0100007F:1F90":                         "127.0.0.1:8080",
		"00000000:0050":                         "0.0.0.0:80",
		"00000000000000000000000000000000:01BB": "[::]:443",
		"00000000000000000000000001000000:1F90": "[::1]:8080",
		"B80D0120000000000000000001000000:0016": "[2001:db8::1]:22",
		"0000000000000000FFFF00000100007F:0050": "127.0.0.1:80",
	} {
		got, err := parseProcAddr(in)
		if err != nil || got.String() != want {
			t.Errorf("parseProcAddr(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0100007F", "01007F:0050", "0100007F:G050", "zz00007F:0050"} {
		if _, err := parseProcAddr(bad); err == nil {
			t.Errorf("parseProcAddr(%q) succeeded", bad)
		}
	}
}

// check asks the nameservers for every server name: one that does not
// resolve is a warning, and check still passes; the summary lists the
// resolvers and the names.
func TestCheckWarnsForNamesItCannotResolve(t *testing.T) {
	z := testbed.StartZone(t)
	z.Set(t, "app1.internal", "app1.internal. 30 IN A 10.0.0.1")
	path := filepath.Join(t.TempDir(), "names.toml")
	conf := fmt.Sprintf(`[resolvers]
nameservers = [%q]
timeout = "200ms"
retries = 1
[[frontend]]
name = "web"
bind = ["127.0.0.1:8080"]
backend = "app"
[[backend]]
name = "app"
init_addr = "none"
[[backend.server]]
name = "s1"
address = "app1.internal:8080"
[[backend.server]]
name = "s2"
address = "app2.internal:8080"
`, z.Addr())
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runMain("check", "-c", path)
	if code != 0 || errOut != "" {
		t.Fatalf("check: exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{
		"resolvers: nameservers " + z.Addr().String(),
		"names: app/s1 app1.internal, app/s2 app2.internal",
		"warning: backend app server s2: resolve app2.internal: nameserver " + z.Addr().String() + ": no such name (NXDOMAIN) (start would try init_addr none)",
		path + ": OK",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check's output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "server s1: resolve") {
		t.Errorf("a name that resolves was warned about:\n%s", out)
	}
}
