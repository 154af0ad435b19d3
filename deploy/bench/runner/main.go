// Command runner is the orchestrator of `make bench` (deploy/bench/run.sh
// builds it and runs it). It starts the backends (nginx, a connection sink,
// iperf3) and each target in turn, runs every workload against it with the
// proxy pinned to one CPU and everything else on the other, reads the
// proxy's CPU time and memory from /proc, and writes the results as
// Markdown, CSV and an SVG chart. See deploy/bench/README.md.
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// settings come from the environment (BENCH_*) and run.sh's flags.
type settings struct {
	seconds   int             // BENCH_SECONDS: length of each measurement
	rounds    int             // BENCH_ROUNDS: alternating rounds of the table's timed steps (table.go)
	conns     int             // BENCH_CONNS: wrk/rategen connections
	hold      int             // BENCH_HOLD: idle connections held
	streams   int             // BENCH_STREAMS: iperf3 -P
	rate      float64         // BENCH_RATE: fixed rate; 0 = fraction of the lowest peak
	fraction  float64         // BENCH_RATE_FRACTION
	only      string          // BENCH_TARGETS: comma list of target keys, "" = all
	steps     map[string]bool // BENCH_STEPS: the steps to run
	proxyCPU  int
	loadCPU   int
	work, out string
	root      string
	ringproxy string
	iocopy    string
	holdconns string
	rategen   string
	tlsgen    string
	tls       tlsSettings
}

type bench struct {
	s       settings
	ss      sweepSettings
	procs   *procTable
	targets []*target
	results map[string]*row
	notes   []string
	step    int
	steps   int
	started time.Time
	rate    float64 // the fixed rate used
	rateWhy string
	maxconn int      // for ringproxy and haproxy, from RLIMIT_NOFILE
	nofile  int      // RLIMIT_NOFILE every process starts with
	env     string   // versions, for the report
	host0   cpuTicks // all CPUs' times at the start: the report says how much the host took
	guard   *stealGuard

	round     int        // the table's round under way, from 1; 0: none (table.go)
	tableRuns []tableRun // every round's figures of the table's timed steps

	sweep        []sweepRec         // every raw figure of the sweep
	sweepPeak    float64            // the req/s the rate points are fractions of; 0: none, they are skipped
	sweepPeakWhy string             // where sweepPeak comes from
	sweepRate    map[string]float64 // "target point" → highest req/s so far, to size redis -n
	sweepFails   map[string]int     // failed sweep runs per target

	tlsRecs  []tlsRec       // every run of the TLS step
	tlsFails map[string]int // failed TLS runs per target
}

type target struct {
	key, name string
	proxy     bool
	http      int // port the HTTP load goes to
	bulk      int // port iperf3 connects to
	hold      int // port holdconns connects to (proxies only)
	redis     int // port redis-benchmark connects to (proxies only)
	tls       int // port tlsgen connects to in the TLS step's plain mode (a)
	sni       int // port of the SNI-routing frontend, mode (b); 0: none
	start     func(b *bench, t *target) (*proc, error)
	skipped   string // reason, once a start said "not supported yet"
	broken    string // set after the proxy failed to start in two steps
	startFail int    // steps in a row whose start failed
	sniSkip   string // reason the SNI mode cannot run (the config refused)
	sniCheck  bool   // the SNI config has been checked
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envStr(name, def string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	return def
}

// stepNames are BENCH_STEPS's words, in the order the steps run.
var stepNames = []string{"keep-alive", "conn-close", "bulk", "idle", "fixed", "tls", "sweep"}

// tableSteps are the steps of the per-target table; mainSteps those whose
// figures are in the per-target rows of latest.csv and latest.svg (the
// table's and the TLS step's).
var (
	tableSteps = stepNames[:5]
	mainSteps  = stepNames[:6]
)

// parseSteps reads BENCH_STEPS, a comma list of stepNames; "" or "all" is
// every step.
func parseSteps(s string) (map[string]bool, error) {
	m := map[string]bool{}
	if strings.TrimSpace(s) == "" || strings.TrimSpace(s) == "all" {
		for _, n := range stepNames {
			m[n] = true
		}
		return m, nil
	}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !contains(stepNames, f) {
			return nil, fmt.Errorf("BENCH_STEPS: unknown step %q (known: %s, all)", f, strings.Join(stepNames, ", "))
		}
		m[f] = true
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("BENCH_STEPS=%q names no step", s)
	}
	return m, nil
}

// anyTable says whether any step of the per-target table runs.
func (s settings) anyTable() bool {
	for _, n := range tableSteps {
		if s.steps[n] {
			return true
		}
	}
	return false
}

// anyMain says whether any step of the per-target rows (latest.csv) runs.
func (s settings) anyMain() bool {
	for _, n := range mainSteps {
		if s.steps[n] {
			return true
		}
	}
	return false
}

// redisWanted says whether the sweep runs redis-benchmark (and so needs
// redis-server).
func (b *bench) redisWanted() bool {
	return b.s.steps["sweep"] && slices.ContainsFunc(sweepPoints(b.ss), func(p sweepPoint) bool { return p.tool == "redis" })
}

func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil && v > 0 {
		return v
	}
	return def
}

func main() {
	var s settings
	flag.StringVar(&s.work, "work", "", "work `DIR` for configs and logs (required)")
	flag.StringVar(&s.out, "out", "deploy/bench/results", "results `DIR`")
	flag.StringVar(&s.root, "root", ".", "repository root (for the version line)")
	flag.StringVar(&s.ringproxy, "ringproxy", "bin/ringproxy", "ringproxy binary")
	flag.StringVar(&s.iocopy, "iocopy", "", "iocopy binary (required)")
	flag.StringVar(&s.holdconns, "holdconns", "", "holdconns binary (required)")
	flag.StringVar(&s.rategen, "rategen", "", "rategen binary (required)")
	flag.StringVar(&s.tlsgen, "tlsgen", "", "tlsgen binary (required for the tls step)")
	flag.IntVar(&s.proxyCPU, "proxy-cpu", 0, "CPU the proxy is pinned to")
	flag.IntVar(&s.loadCPU, "load-cpu", 1, "CPU the load generators and backends are pinned to")
	flag.Parse()
	if s.work == "" || s.iocopy == "" || s.holdconns == "" || s.rategen == "" {
		fmt.Fprintln(os.Stderr, "runner: -work, -iocopy, -holdconns and -rategen are required (use deploy/bench/run.sh)")
		os.Exit(2)
	}
	s.seconds = envInt("BENCH_SECONDS", 6)
	s.conns = envInt("BENCH_CONNS", 64)
	s.hold = envInt("BENCH_HOLD", 5000)
	s.streams = envInt("BENCH_STREAMS", 4)
	s.rate = envFloat("BENCH_RATE", 0)
	s.fraction = envFloat("BENCH_RATE_FRACTION", 0.6)
	s.only = os.Getenv("BENCH_TARGETS")
	var ss sweepSettings
	var err error
	if s.steps, err = parseSteps(os.Getenv("BENCH_STEPS")); err != nil {
		fatal(err)
	}
	ss.rounds = envInt("BENCH_ROUNDS", 5)
	s.rounds = ss.rounds
	ss.seconds = envInt("BENCH_SWEEP_SECONDS", min(s.seconds, 5))
	ss.pipe = envInt("BENCH_SWEEP_PIPELINE", 16)
	if ss.conns, err = parseConns(envStr("BENCH_SWEEP_CONNS", "1,4,16,64,256")); err != nil {
		fatal(err)
	}
	if ss.workloads, err = parseWorkloads(os.Getenv("BENCH_SWEEP_WORKLOADS")); err != nil {
		fatal(err)
	}
	if ss.rates, err = parseRates(envStr("BENCH_SWEEP_RATES", "25,50,75")); err != nil {
		fatal(err)
	}
	ss.rateConns = s.conns
	ss.peak = envFloat("BENCH_SWEEP_PEAK", 0)
	s.tls = tlsSettings{
		seconds: envInt("BENCH_TLS_SECONDS", min(s.seconds, 5)),
		conns:   envInt("BENCH_TLS_CONNS", 16),
		rounds:  ss.rounds,
	}
	if s.steps["tls"] && s.tlsgen == "" {
		fatal(fmt.Errorf("the tls step needs -tlsgen (use deploy/bench/run.sh)"))
	}
	for _, p := range []*string{&s.work, &s.out, &s.root, &s.ringproxy, &s.iocopy, &s.holdconns, &s.rategen, &s.tlsgen} {
		if a, err := filepath.Abs(*p); err == nil {
			*p = a
		}
	}

	b := &bench{s: s, ss: ss, results: map[string]*row{}, started: time.Now(), sweepRate: map[string]float64{},
		guard: newStealGuard(envFloat("BENCH_STEAL_LIMIT", 5), envInt("BENCH_STEAL_RETRIES", 2))}
	b.procs = &procTable{live: map[*proc]bool{}, logDir: filepath.Join(s.work, "logs"), pgidLog: filepath.Join(s.work, "pgids")}
	for _, d := range []string{b.procs.logDir, filepath.Join(s.work, "nginx"), s.out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			fatal(err)
		}
	}

	// Every process started is stopped on the way out, signal or not.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "\nrunner: %v: stopping everything it started\n", sig)
		b.procs.stopAll()
		os.Exit(130)
	}()

	err = b.run()
	b.procs.stopAll()
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "runner: %v\n", err)
	os.Exit(1)
}

func (b *bench) run() error {
	nofile := raiseNofile()
	b.nofile = nofile
	// HAProxy needs about 2.5 fds per connection with splice (two sockets
	// and a share of pipes) and refuses to start if maxconn needs more than
	// the limit allows: size maxconn (the same for ringproxy) from it.
	b.maxconn = min(30000, (nofile-500)*2/5)
	if b.maxconn < b.s.hold+100 {
		b.note("RLIMIT_NOFILE is %d: too low to hold %d connections through a proxy (raise it, or lower BENCH_HOLD)", nofile, b.s.hold)
		b.maxconn = max(b.maxconn, 100)
	}
	checkEphemeral(b)
	b.env = b.environment() // now: the tree may change while the run goes on
	b.host0, _ = hostTicks()
	b.targets = b.makeTargets()
	if len(b.targets) == 0 {
		return fmt.Errorf("BENCH_TARGETS=%q names no target (known: direct, uring, epoll, haproxy, iocopy)", b.s.only)
	}
	for _, t := range b.targets {
		b.results[t.key] = newRow()
	}
	// In rounds, per target: keep-alive, connection-close, bulk both ways;
	// then idle connections once per target; then the fixed rate in
	// rounds; then the TLS step and the sweep.
	st := b.s.steps
	timed := 0
	for _, n := range []string{"keep-alive", "conn-close", "bulk", "bulk", "fixed"} { // bulk: two runs
		if st[n] {
			timed++
		}
	}
	b.steps = len(b.targets) * timed * b.s.rounds
	if st["idle"] {
		b.steps += len(b.targets)
	}
	if st["tls"] {
		b.steps += b.tlsCount()
	}
	if st["sweep"] {
		b.steps += b.sweepCount()
	}
	fmt.Printf("bench: %d targets, %d steps (%s); proxy on CPU %d, load and backends on CPU %d; work dir %s\n",
		len(b.targets), b.steps, strings.Join(b.stepList(), ", "), b.s.proxyCPU, b.s.loadCPU, b.s.work)
	if b.steps == 0 {
		return fmt.Errorf("nothing to run: BENCH_STEPS and BENCH_SWEEP_WORKLOADS select no step for these targets")
	}

	if err := b.writeConfigs(); err != nil {
		return err
	}
	if err := b.startBackends(); err != nil {
		return err
	}
	b.inRounds(b.targets, func(t *target) {
		b.maybeStep(t, "keep-alive", "keep-alive", "ka", b.stepKeepAlive, "rps", "p50_ms", "p99_ms", "cpu_us_req")
		b.maybeStep(t, "conn-close", "conn-close", "close", b.stepClose, "cps", "cpu_us_conn")
		b.maybeStep(t, "bulk", "bulk upload", "bulk_up", b.stepBulkUp, "gbps_up")
		b.maybeStep(t, "bulk", "bulk download", "bulk_down", b.stepBulkDown, "gbps_down")
		if st["bulk"] {
			b.finishBulk(t)
		} else {
			b.results[t.key].set("cpu_s_gb", cell{text: "not run"})
		}
	})
	for _, t := range b.targets {
		b.maybeStep(t, "idle", "idle conns", "", b.stepHold, "kib_conn", "rss_base_mib", "rss_held_mib")
	}
	if st["fixed"] {
		b.chooseRate() // from the keep-alive medians
	}
	b.inRounds(b.targets, func(t *target) {
		switch {
		case !st["fixed"]:
			b.results[t.key].set("cpu_us_req_fixed", cell{text: "not run"})
		case b.rate <= 0:
			b.skipStep(t, "fixed rate", "no keep-alive peak was measured", "cpu_us_req_fixed")
		default:
			b.runStep(t, fmt.Sprintf("fixed %.0f req/s", b.rate), "fixed", b.stepFixed, "cpu_us_req_fixed")
		}
	})
	if st["tls"] {
		b.runTLS()
	} else {
		b.tlsNotRun()
	}
	if st["sweep"] {
		b.chooseSweepPeak()
		b.runSweep()
	}
	return b.writeReports()
}

// stepList is the steps this run runs, in order.
func (b *bench) stepList() []string {
	var l []string
	for _, n := range stepNames {
		if b.s.steps[n] {
			l = append(l, n)
		}
	}
	return l
}

// maybeStep runs the step if BENCH_STEPS selects group, and marks its
// metrics "not run" if not.
func (b *bench) maybeStep(t *target, group, step, prefix string, fn func(t *target, p *proc) (string, error), metrics ...string) {
	if !b.s.steps[group] {
		for _, m := range metrics {
			b.results[t.key].set(m, cell{text: "not run"})
		}
		return
	}
	b.runStep(t, step, prefix, fn, metrics...)
}

// raiseNofile raises RLIMIT_NOFILE as far as it goes (children inherit it:
// Go restores the original limit in children only when the program never
// set it) and returns the soft limit in force.
func raiseNofile() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 1024
	}
	// With CAP_SYS_RESOURCE the hard limit can go up to fs.nr_open.
	want := syscall.Rlimit{Cur: 1 << 20, Max: max(lim.Max, 1<<20)}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) != nil {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	return int(min(lim.Cur, 1<<30))
}

// checkEphemeral notes when a fixed port lies in the kernel's ephemeral
// port range, where a client connection could take it.
func checkEphemeral(b *bench) {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(data), &lo, &hi); err != nil {
		return
	}
	if nginxPort <= hi && lastPort >= lo {
		b.note("net.ipv4.ip_local_port_range is %d-%d and overlaps the benchmark's ports (%d-%d): binds may fail", lo, hi, nginxPort, lastPort)
	}
}

func (b *bench) makeTargets() []*target {
	all := []*target{
		{key: "direct", name: "no proxy", http: nginxPort, bulk: iperfPort},
		{key: "uring", name: "ringproxy uring", proxy: true, http: 27110, start: startRingproxy("uring")},
		{key: "epoll", name: "ringproxy epoll", proxy: true, http: 27120, start: startRingproxy("epoll")},
		{key: "haproxy", name: "haproxy", proxy: true, http: 27130, start: startHaproxy},
		{key: "iocopy", name: "go io.Copy", proxy: true, http: 27140, start: startIocopy},
	}
	var ts []*target
	for _, t := range all {
		if t.proxy {
			t.bulk, t.hold, t.redis, t.tls = t.http+1, t.http+2, t.http+3, t.http+4
		}
		switch t.key {
		case "direct":
			t.tls = tlsBackendPort
		case "uring", "epoll", "haproxy":
			t.sni = t.http + 5
		}
		if b.s.only == "" || contains(strings.Split(b.s.only, ","), t.key) {
			ts = append(ts, t)
		}
	}
	return ts
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}

func (b *bench) writeConfigs() error {
	w := b.s.work
	files := map[string]string{
		"nginx.conf": nginxConf(w, b.s.loadCPU),
		"report.lua": wrkScript,
	}
	for _, t := range b.targets {
		switch t.key {
		case "uring", "epoll":
			files["ringproxy-"+t.key+".toml"] = ringproxyConf(t.http, b.maxconn)
			files["ringproxy-"+t.key+"-tls.toml"] = ringproxyTLSConf(t.tls, b.maxconn, false)
			files["ringproxy-"+t.key+"-sni.toml"] = ringproxyTLSConf(t.sni, b.maxconn, true)
		case "haproxy":
			files["haproxy.cfg"] = haproxyConf(t.http, b.maxconn)
			files["haproxy-tls.cfg"] = haproxyTLSConf(t.tls, b.maxconn, false)
			files["haproxy-sni.cfg"] = haproxyTLSConf(t.sni, b.maxconn, true)
		}
	}
	for name, text := range files {
		if _, err := writeFile(w, name, text); err != nil {
			return err
		}
	}
	return nil
}

// startBackends starts nginx and the connection sink for the whole run
// (iperf3's server is started per bulk step).
func (b *bench) startBackends() error {
	ports := []int{nginxPort, iperfPort, sinkPort, redisPort}
	if b.s.steps["tls"] {
		ports = append(ports, tlsPorts()...)
	}
	for _, t := range b.targets {
		if t.proxy {
			ports = append(ports, t.http, t.bulk, t.hold, t.redis, t.tls)
		}
		if t.sni != 0 {
			ports = append(ports, t.sni)
		}
	}
	for _, port := range ports {
		if listening(port) {
			return fmt.Errorf("port %d is already in use on this machine: stop what listens there first", port)
		}
	}
	ng, err := b.procs.spawn("nginx", b.s.loadCPU, nil, "nginx", "-c", filepath.Join(b.s.work, "nginx.conf"))
	if err != nil {
		return err
	}
	if err := waitListening(ng, []int{nginxPort}, 10*time.Second); err != nil {
		return fmt.Errorf("nginx: %w (see %s)", err, filepath.Join(b.s.work, "logs"))
	}
	sink, err := b.procs.spawn("sink", b.s.loadCPU, []string{"GOMAXPROCS=1"}, b.s.holdconns, "-sink", addr(sinkPort))
	if err != nil {
		return err
	}
	if err := waitListening(sink, []int{sinkPort}, 10*time.Second); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	if b.redisWanted() {
		rs, err := b.procs.spawn("redis-server", b.s.loadCPU, nil, redisArgs(b.s.work)...)
		if err != nil {
			return err
		}
		if err := waitListening(rs, []int{redisPort}, 10*time.Second); err != nil {
			return fmt.Errorf("redis-server: %w (see %s)", err, filepath.Join(b.s.work, "logs"))
		}
	}
	if b.s.steps["tls"] {
		if err := b.startTLSBackends(); err != nil {
			return err
		}
	}
	return nil
}

func startRingproxy(engine string) func(b *bench, t *target) (*proc, error) {
	return func(b *bench, t *target) (*proc, error) {
		cfg := filepath.Join(b.s.work, "ringproxy-"+t.key+".toml")
		return b.procs.spawn("ringproxy-"+engine, b.s.proxyCPU, nil,
			b.s.ringproxy, "run", "-c", cfg, "--engine", engine, "--workers", "1")
	}
}

func startHaproxy(b *bench, t *target) (*proc, error) {
	return b.procs.spawn("haproxy", b.s.proxyCPU, nil, "haproxy", "-db", "-f", filepath.Join(b.s.work, "haproxy.cfg"))
}

func startIocopy(b *bench, t *target) (*proc, error) {
	args := []string{b.s.iocopy}
	for _, r := range routes(t.http) {
		args = append(args, "-route", r.listen+"="+r.backend)
	}
	return b.procs.spawn("iocopy", b.s.proxyCPU, []string{"GOMAXPROCS=1"}, args...)
}

// progress prints "[i/N] target step: text".
func (b *bench) progress(t *target, step, text string) {
	fmt.Printf("[%d/%d] %s %s: %s\n", b.step, b.steps, t.name, step, text)
}

func (b *bench) note(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}

func (b *bench) skipStep(t *target, step, reason string, metrics ...string) {
	b.step++
	step = b.roundStep(step)
	b.progress(t, step, "skipped: "+reason)
	for _, m := range metrics {
		b.results[t.key].set(m, cell{text: "skipped"})
	}
}

// runStep runs one step of the target, and records a failure in the
// metrics the step owns when anything went wrong. One step's failure never
// stops the run. A step with a prefix counts time, and goes through the
// steal guard: its figures are those of the attempt the host took least
// of, and prefix_attempts and prefix_host_steal_pct say how it went.
func (b *bench) runStep(t *target, step, prefix string, fn func(t *target, p *proc) (string, error), metrics ...string) {
	if t.skipped != "" {
		b.skipStep(t, step, t.skipped, metrics...)
		return
	}
	b.step++
	step = b.roundStep(step)
	r := b.results[t.key]
	if t.broken != "" {
		b.progress(t, step, "not run: "+t.broken)
		for _, m := range metrics {
			r.set(m, cell{text: "failed"})
		}
		return
	}
	if prefix == "" {
		b.stepAttempt(t, step, fn, metrics)
		return
	}
	before := r.clone()
	var tries []*row
	var steals []float64
	kept := b.guard.measure(func(n int) (float64, bool) {
		name := step
		if n > 0 {
			name += fmt.Sprintf(" (again, %d)", n)
		}
		r.cells = before.clone().cells
		pct, measured := b.stepAttempt(t, name, fn, metrics)
		tries, steals = append(tries, r.clone()), append(steals, pct)
		return pct, measured
	})
	r.cells = tries[kept].cells
	r.set(prefix+"_attempts", num(float64(len(tries))))
	if !math.IsNaN(steals[kept]) {
		r.set(prefix+"_host_steal_pct", num(steals[kept]))
	}
}

// stepAttempt starts a fresh proxy for the target (none for "no proxy"),
// runs fn against it and stops it. It says what share of the CPUs' time
// the host took during fn, and whether the step measured.
func (b *bench) stepAttempt(t *target, step string, fn func(t *target, p *proc) (string, error), metrics []string) (float64, bool) {
	p, skip, err := b.startFor(t)
	switch {
	case skip != "":
		b.progress(t, step, "skipped: "+skip)
		for _, m := range metrics {
			b.results[t.key].set(m, cell{text: "skipped"})
		}
		return math.NaN(), false
	case err != nil:
		b.fail(t, step, err, metrics)
		return math.NaN(), false
	}
	if p != nil {
		defer p.stop(5 * time.Second)
	}
	flushTimeWait()
	stolen := b.guard.sample()
	text, err := fn(t, p)
	steal := stolen()
	if err == nil && p != nil && p.exited() {
		err = fmt.Errorf("the proxy exited during the step (%v)%s", p.err, p.stderrTail())
	}
	if err != nil {
		b.fail(t, step, err, metrics)
		return math.NaN(), false
	}
	b.progress(t, step, text+b.guard.verdict(steal))
	return steal, true
}

// startFor starts a fresh proxy for one step of the target (none, nil, for
// no proxy), with a second chance for a transient failure. skip is the
// reason when the target cannot run in this build (then every later step
// of it is skipped); two failed starts in a row mark the target broken.
func (b *bench) startFor(t *target) (p *proc, skip string, err error) {
	if !t.proxy {
		return nil, "", nil
	}
	for try := 0; try < 2; try++ {
		if p, err = b.startProxy(t); err == nil {
			break
		}
		if _, ok := isSkip(err); ok {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		if reason, ok := isSkip(err); ok {
			t.skipped = reason
			b.note("%s: skipped: %s", t.name, reason)
			return nil, reason, nil
		}
		if t.startFail++; t.startFail >= 2 {
			t.broken = "the proxy failed to start in two steps in a row (see above)"
		}
		return nil, "", fmt.Errorf("start: %w", err)
	}
	t.startFail = 0
	return p, "", nil
}

// startProxy starts the target's proxy and waits until all its binds listen.
func (b *bench) startProxy(t *target) (*proc, error) {
	p, err := t.start(b, t)
	if err != nil {
		return nil, err
	}
	if err := waitListening(p, []int{t.http, t.bulk, t.hold, t.redis}, 10*time.Second); err != nil {
		p.stop(3 * time.Second)
		return nil, err
	}
	return p, nil
}

func (b *bench) fail(t *target, step string, err error, metrics []string) {
	b.progress(t, step, "FAILED: "+err.Error())
	b.note("%s %s failed: %v", t.name, step, err)
	for _, m := range metrics {
		b.results[t.key].set(m, cell{text: "failed"})
	}
}

// load runs a load tool on the load CPU and returns its stdout; a non-zero
// exit or a hang past the step's length plus slack is an error.
func (b *bench) load(name string, env []string, argv ...string) (string, error) {
	return b.loadFor(name, time.Duration(b.s.seconds)*time.Second+30*time.Second, env, argv...)
}

// loadFor is load with its own time limit.
func (b *bench) loadFor(name string, timeout time.Duration, env []string, argv ...string) (string, error) {
	p, err := b.procs.spawn(name, b.s.loadCPU, env, argv...)
	if err != nil {
		return "", err
	}
	err = p.wait(timeout)
	return p.stdout(), err
}

// measure starts the CPU meter on the proxy (if any), runs fn, and returns
// the proxy's CPU use over it.
func (b *bench) measure(p *proc, fn func() error) (cpuUse, error) {
	if p == nil {
		return cpuUse{}, fn()
	}
	m, err := startCPU(p.pid(), b.s.proxyCPU)
	if err != nil {
		return cpuUse{}, err
	}
	if err := fn(); err != nil {
		return cpuUse{}, err
	}
	return m.stop()
}

func (b *bench) wrk(t *target, extra ...string) (wrkResult, error) {
	return b.wrkRun(t, b.s.conns, b.s.seconds, extra...)
}

// wrkRun is one wrk run, one thread, conns connections, for seconds.
func (b *bench) wrkRun(t *target, conns, seconds int, extra ...string) (wrkResult, error) {
	args := []string{"wrk", "-t1", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(seconds) + "s",
		"--timeout", "5s", "--latency", "-s", filepath.Join(b.s.work, "report.lua")}
	args = append(args, extra...)
	args = append(args, fmt.Sprintf("http://%s/", addr(t.http)))
	out, err := b.loadFor("wrk", time.Duration(seconds)*time.Second+30*time.Second, nil, args...)
	if err != nil {
		return wrkResult{}, err
	}
	return parseWrk(out)
}

// perUnit returns CPU µs per unit (request, connection) as a cell.
func perUnit(u cpuUse, n float64) cell {
	if n <= 0 {
		return cell{text: "failed"}
	}
	return num(u.Charged() / n * 1e6)
}

func (b *bench) setCPU(t *target, prefix string, u cpuUse) {
	r := b.results[t.key]
	if !t.proxy {
		return
	}
	r.set(prefix+"_cpu_proc_s", num(u.Proc))
	r.set(prefix+"_cpu_core_s", num(u.Core))
	r.set(prefix+"_cpu_steal_s", num(u.Steal))
}

func (b *bench) checkErrors(t *target, step string, w wrkResult) {
	if e := w.errors(); e > 0 {
		b.note("%s %s: %d wrk errors (connect %d, read %d, write %d, status %d, timeout %d) in %d requests",
			t.name, step, e, w.Connect, w.Read, w.Write, w.Status, w.Timeout, w.Requests)
	}
}

func (b *bench) stepKeepAlive(t *target, p *proc) (string, error) {
	var w wrkResult
	u, err := b.measure(p, func() (err error) { w, err = b.wrk(t); return })
	if err != nil {
		return "", err
	}
	r := b.results[t.key]
	r.set("rps", num(w.rate()))
	r.set("p50_ms", num(w.P50us/1000))
	r.set("p99_ms", num(w.P99us/1000))
	r.set("ka_requests", num(float64(w.Requests)))
	r.set("ka_errors", num(float64(w.errors())))
	b.checkErrors(t, "keep-alive", w)
	text := fmt.Sprintf("%.0f req/s, p50 %.3f ms, p99 %.3f ms", w.rate(), w.P50us/1000, w.P99us/1000)
	if t.proxy {
		c := perUnit(u, float64(w.Requests))
		r.set("cpu_us_req", c)
		b.setCPU(t, "ka", u)
		text += fmt.Sprintf(", CPU %.1f µs/req (%s)", c.v, u)
	} else {
		r.set("cpu_us_req", dash())
	}
	return text, nil
}

func (b *bench) stepClose(t *target, p *proc) (string, error) {
	var w wrkResult
	u, err := b.measure(p, func() (err error) { w, err = b.wrk(t, "-H", "Connection: close"); return })
	if err != nil {
		return "", err
	}
	r := b.results[t.key]
	r.set("cps", num(w.rate()))
	r.set("close_requests", num(float64(w.Requests)))
	r.set("close_errors", num(float64(w.errors())))
	b.checkErrors(t, "conn-close", w)
	text := fmt.Sprintf("%.0f conn/s", w.rate())
	if t.proxy {
		c := perUnit(u, float64(w.Requests))
		r.set("cpu_us_conn", c)
		b.setCPU(t, "close", u)
		text += fmt.Sprintf(", CPU %.1f µs/conn", c.v)
	} else {
		r.set("cpu_us_conn", dash())
	}
	return text, nil
}

// bulk runs one iperf3 test through the target; reverse is -R (the server
// sends).
func (b *bench) bulk(t *target, p *proc, dir string, reverse bool) (string, error) {
	srv, err := b.procs.spawn("iperf3-server", b.s.loadCPU, nil, "iperf3", "-s", "-B", host, "-p", strconv.Itoa(iperfPort))
	if err != nil {
		return "", err
	}
	defer srv.stop(3 * time.Second)
	if err := waitListening(srv, []int{iperfPort}, 10*time.Second); err != nil {
		return "", fmt.Errorf("iperf3 server: %w", err)
	}
	args := []string{"iperf3", "-c", host, "-p", strconv.Itoa(t.bulk), "-P", strconv.Itoa(b.s.streams),
		"-t", strconv.Itoa(b.s.seconds), "-J", "--connect-timeout", "5000"}
	if reverse {
		args = append(args, "-R")
	}
	var res iperfResult
	u, err := b.measure(p, func() error {
		out, err := b.load("iperf3", nil, args...)
		if err != nil {
			if _, perr := parseIperf(out); perr != nil {
				return fmt.Errorf("%v (%v)", err, perr)
			}
			return err
		}
		res, err = parseIperf(out)
		return err
	})
	if err != nil {
		return "", err
	}
	gbps := res.End.SumReceived.BitsPerSecond / 1e9
	bytes := res.End.SumReceived.Bytes
	r := b.results[t.key]
	r.set("gbps_"+dir, num(gbps))
	r.set("bulk_"+dir+"_bytes", num(bytes))
	text := fmt.Sprintf("%.2f Gbit/s", gbps)
	if t.proxy {
		b.setCPU(t, "bulk_"+dir, u)
		text += fmt.Sprintf(", CPU %.3f s/GB", u.Charged()/(bytes/1e9))
	}
	return text, nil
}

func (b *bench) stepBulkUp(t *target, p *proc) (string, error) { return b.bulk(t, p, "up", false) }
func (b *bench) stepBulkDown(t *target, p *proc) (string, error) {
	return b.bulk(t, p, "down", true)
}

// finishBulk turns both directions' CPU and bytes into CPU seconds per GB
// (10^9 bytes through the proxy).
func (b *bench) finishBulk(t *target) {
	r := b.results[t.key]
	switch {
	case !t.proxy:
		r.set("cpu_s_gb", dash())
		return
	case t.skipped != "":
		r.set("cpu_s_gb", cell{text: "skipped"})
		return
	}
	var cpu, bytes float64
	for _, dir := range []string{"up", "down"} {
		p, c := r.get("bulk_"+dir+"_cpu_proc_s"), r.get("bulk_"+dir+"_cpu_core_s")
		n := r.get("bulk_" + dir + "_bytes")
		if p.ok && c.ok && n.ok {
			cpu += max(p.v, c.v)
			bytes += n.v
		}
	}
	if bytes == 0 {
		r.set("cpu_s_gb", cell{text: "failed"})
		return
	}
	r.set("cpu_s_gb", num(cpu/(bytes/1e9)))
}

// stepHold opens BENCH_HOLD idle connections through the proxy, waits until
// the sink behind it holds them all, and reads the proxy's RSS growth.
func (b *bench) stepHold(t *target, p *proc) (string, error) {
	r := b.results[t.key]
	if !t.proxy {
		r.set("kib_conn", dash())
		r.set("rss_base_mib", dash())
		r.set("rss_held_mib", dash())
		return "- (no proxy process to measure)", nil
	}
	base := tcpSockets(sinkPort, "01")
	time.Sleep(300 * time.Millisecond)
	before, err := rssKiB(p.pid())
	if err != nil {
		return "", err
	}
	hc, err := b.procs.spawn("holdconns", b.s.loadCPU, []string{"GOMAXPROCS=1"},
		b.s.holdconns, "-connect", addr(t.hold), "-n", strconv.Itoa(b.s.hold))
	if err != nil {
		return "", err
	}
	defer hc.stop(5 * time.Second)
	// Wait for the client to finish connecting...
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(hc.stdout(), "connected") {
		if hc.exited() || time.Now().After(deadline) {
			return "", fmt.Errorf("holdconns did not finish connecting (%v)%s", hc.err, hc.stderrTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	var connected, failed int
	fmt.Sscanf(hc.stdout(), "connected %d failed %d", &connected, &failed)
	// ...then for the proxy to have connected each of them to the sink.
	// Give up when the count has not grown for 3 s (the proxy is out of fds).
	held, last, grew := 0, -1, time.Now()
	for deadline = time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if held = tcpSockets(sinkPort, "01") - base; held >= connected {
			break
		}
		if held > last {
			last, grew = held, time.Now()
		} else if time.Since(grew) > 3*time.Second {
			break
		}
	}
	time.Sleep(time.Second) // let the proxy settle
	after, err := rssKiB(p.pid())
	if err != nil {
		return "", err
	}
	if held <= 0 {
		return "", fmt.Errorf("no connection reached the sink (%d client connections)", connected)
	}
	n := min(held, connected)
	if failed > 0 || held < connected {
		b.note("%s idle conns: %d of %d client connections opened, %d reached the backend (RLIMIT_NOFILE %d)%s",
			t.name, connected, b.s.hold, held, b.nofile, p.stderrTail())
	}
	kib := float64(after-before) / float64(n)
	r.set("kib_conn", num(kib))
	r.set("hold_conns", num(float64(n)))
	r.set("rss_before_kib", num(float64(before)))
	r.set("rss_base_mib", num(float64(before)/1024))
	r.set("rss_after_kib", num(float64(after)))
	r.set("rss_held_mib", num(float64(after)/1024))
	return fmt.Sprintf("%.1f KiB/conn (RSS %d → %d KiB over %d connections)", kib, before, after, n), nil
}

// chooseRate picks the fixed rate: BENCH_RATE, or BENCH_RATE_FRACTION of
// the lowest keep-alive peak measured in this run, rounded down to 100.
func (b *bench) chooseRate() {
	if b.s.rate > 0 {
		b.rate, b.rateWhy = b.s.rate, "set by BENCH_RATE"
		return
	}
	low, who := math.Inf(1), ""
	for _, t := range b.targets {
		if c := b.results[t.key].get("rps"); c.ok && c.v < low {
			low, who = c.v, t.name
		}
	}
	if math.IsInf(low, 1) {
		return
	}
	b.rate = math.Floor(low*b.s.fraction/100) * 100
	if b.rate < 100 {
		b.rate = math.Max(1, math.Floor(low*b.s.fraction))
	}
	b.rateWhy = fmt.Sprintf("%.0f%% of the lowest keep-alive peak (%s, %.0f req/s)", b.s.fraction*100, who, low)
	fmt.Printf("bench: fixed rate %.0f req/s = %s\n", b.rate, b.rateWhy)
}

// rategenRun is one rategen run against t at rate over conns connections
// for seconds, with the proxy's CPU over it.
func (b *bench) rategenRun(t *target, p *proc, rate float64, conns, seconds int) (rateResult, cpuUse, error) {
	var rr rateResult
	u, err := b.measure(p, func() error {
		out, err := b.loadFor("rategen", time.Duration(seconds)*time.Second+30*time.Second,
			[]string{"GOMAXPROCS=1"}, b.s.rategen, "-addr", addr(t.http),
			"-rate", strconv.FormatFloat(rate, 'f', 0, 64), "-conns", strconv.Itoa(conns),
			"-duration", strconv.Itoa(seconds)+"s")
		if err != nil {
			return err
		}
		rr, err = parseRate(out)
		return err
	})
	return rr, u, err
}

func (b *bench) stepFixed(t *target, p *proc) (string, error) {
	rr, u, err := b.rategenRun(t, p, b.rate, b.s.conns, b.s.seconds)
	if err != nil {
		return "", err
	}
	r := b.results[t.key]
	r.set("fixed_rate", num(b.rate))
	r.set("fixed_achieved_rps", num(rr.AchievedPS))
	r.set("fixed_requests", num(float64(rr.Requests)))
	r.set("fixed_errors", num(float64(rr.Errors)))
	r.set("fixed_p50_ms", num(rr.P50us/1000))
	r.set("fixed_p99_ms", num(rr.P99us/1000))
	if rr.AchievedPS < 0.95*b.rate {
		b.note("%s fixed rate: achieved %.0f of %.0f req/s", t.name, rr.AchievedPS, b.rate)
	}
	if rr.Errors > 0 {
		b.note("%s fixed rate: %d errors (last: %s)", t.name, rr.Errors, rr.LastError)
	}
	text := fmt.Sprintf("achieved %.0f req/s, p50 %.3f ms, p99 %.3f ms", rr.AchievedPS, rr.P50us/1000, rr.P99us/1000)
	if t.proxy {
		c := perUnit(u, float64(rr.Requests))
		r.set("cpu_us_req_fixed", c)
		b.setCPU(t, "fixed", u)
		text += fmt.Sprintf(", CPU %.1f µs/req (%s)", c.v, u)
	} else {
		r.set("cpu_us_req_fixed", dash())
	}
	return text, nil
}

// flushTimeWait drops the TIME_WAIT sockets left on the benchmark's ports
// (`ss -K`; best effort: the kernel needs INET_DIAG_DESTROY). A conn-close
// step leaves tens of thousands for 60 s, and connect() then searches
// longer for a free port: whichever target ran next paid for the previous
// one's closes (one measured 7.2k conn/s after the no-proxy step, against
// 11k alone).
func flushTimeWait() {
	ports := fmt.Sprintf("( sport >= :%d and sport <= :%d ) or ( dport >= :%d and dport <= :%d )",
		nginxPort, lastPort, nginxPort, lastPort)
	_ = exec.Command("ss", "-K", "-Htan", "state", "time-wait", ports).Run()
}
