package ring

import (
	"fmt"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"

	"ringproxy/mempool"
)

// Features is what the running kernel's io_uring offers, found once per
// process by Probe.
type Features struct {
	Kernel     string
	Err        error  // io_uring cannot be set up at all
	SetupFlags uint32 // best setup flags that work here

	SingleIssuer      bool // IORING_SETUP_SINGLE_ISSUER (6.0)
	DeferTaskrun      bool // IORING_SETUP_DEFER_TASKRUN (6.1)
	CoopTaskrun       bool // IORING_SETUP_COOP_TASKRUN (5.19)
	ExtArg            bool // IORING_FEAT_EXT_ARG: waits with a timeout (5.11)
	MultishotAccept   bool // (5.19)
	MultishotRecv     bool // (6.0)
	BufRing           bool // provided buffer rings (5.19)
	RegisteredBuffers bool // fixed buffers
	FixedBufferSend   bool // plain send from a fixed buffer
	RecvSendBundle    bool // IORING_FEAT_RECVSEND_BUNDLE (6.10)
	MinWait           bool // IORING_FEAT_MIN_TIMEOUT: min_wait_usec in waits (6.12)
	OpConnect         bool
	OpShutdown        bool
}

var (
	probeOnce sync.Once
	probed    Features
)

// Probe reports the kernel's io_uring features. It runs the probe once
// and caches the answer.
func Probe() Features {
	probeOnce.Do(func() { probed = probe() })
	return probed
}

// Feature is one named line of the probe, for `ringproxy version`.
type Feature struct {
	Name string
	OK   bool
}

// List names every probed feature in a fixed order.
func (f Features) List() []Feature {
	return []Feature{
		{"multishot accept", f.MultishotAccept},
		{"multishot recv", f.MultishotRecv},
		{"provided buffer rings", f.BufRing},
		{"registered buffers", f.RegisteredBuffers},
		{"send from registered buffers", f.FixedBufferSend},
		{"single-issuer", f.SingleIssuer},
		{"defer-taskrun", f.DeferTaskrun},
		{"coop-taskrun", f.CoopTaskrun},
		{"wait with timeout (ext-arg)", f.ExtArg},
		{"recv/send bundles", f.RecvSendBundle},
		{"minimum wait (min_wait_usec)", f.MinWait},
		{"connect op", f.OpConnect},
		{"shutdown op", f.OpShutdown},
	}
}

// UringUsable says why the io_uring engine cannot run here, naming the
// missing feature, or nil.
func (f Features) UringUsable() error {
	if f.Err != nil {
		return f.Err
	}
	need := []struct {
		ok   bool
		name string
	}{
		{f.ExtArg, "waits with a timeout (IORING_FEAT_EXT_ARG, Linux 5.11)"},
		{f.OpConnect, "the connect op (Linux 5.5)"},
		{f.BufRing, "provided buffer rings (Linux 5.19)"},
		{f.MultishotAccept, "multishot accept (Linux 5.19)"},
	}
	for _, n := range need {
		if !n.ok {
			return fmt.Errorf("io_uring engine: kernel %s lacks %s", f.Kernel, n.name)
		}
	}
	return nil
}

func probe() Features {
	f := Features{Kernel: kernelRelease()}
	feats, err := setupFeatures(0)
	if err != nil {
		f.Err = fmt.Errorf("io_uring unavailable on kernel %s: io_uring_setup: %w (is kernel.io_uring_disabled set?)", f.Kernel, err)
		return f
	}
	f.ExtArg = feats&giouring.FeatExtArg != 0
	f.RecvSendBundle = feats&featRecvSendBundle != 0
	f.MinWait = feats&featMinTimeout != 0
	f.probeSetupFlags()
	if p, err := giouring.GetProbe(); err == nil {
		f.OpConnect = p.IsSupported(giouring.OpConnect)
		f.OpShutdown = p.IsSupported(giouring.OpShutdown)
	}
	if f.ExtArg { // the test requests below need waits with a timeout
		f.probeRequests()
	}
	return f
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// ioUringParams is struct io_uring_params; giouring's has no exported
// fields, so the probe calls io_uring_setup itself to read features.
type ioUringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff, cqOff                                                           [40]byte
}

func setupFeatures(flags uint32) (uint32, error) {
	p := ioUringParams{flags: flags}
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 4, uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return 0, errno
	}
	unix.Close(int(fd))
	return p.features, nil
}

// probeSetupFlags picks the best setup flags: DEFER_TASKRUN runs
// completion work only when the loop asks for events, so a busy loop is
// not interrupted; COOP_TASKRUN is the older, weaker form.
func (f *Features) probeSetupFlags() {
	const (
		submitAll = giouring.SetupSubmitAll
		single    = giouring.SetupSingleIssuer
		deferTR   = giouring.SetupDeferTaskrun
		coop      = giouring.SetupCoopTaskrun | giouring.SetupTaskrunFlag
	)
	if _, err := setupFeatures(single); err == nil {
		f.SingleIssuer = true
	}
	if _, err := setupFeatures(single | deferTR); err == nil {
		f.DeferTaskrun = true
	}
	if _, err := setupFeatures(coop); err == nil {
		f.CoopTaskrun = true
	}
	for _, flags := range []uint32{submitAll | single | deferTR, submitAll | single | coop, submitAll | coop, submitAll, 0} {
		if _, err := setupFeatures(flags); err == nil {
			f.SetupFlags = flags
			return
		}
	}
}

// probeRequests finds what neither the op probe nor the feature bits tell,
// by submitting test requests on a scratch ring.
func (f *Features) probeRequests() {
	r := giouring.NewRing()
	if err := r.QueueInit(8, 0); err != nil {
		return
	}
	defer r.QueueExit()
	a, err := mempool.NewArena(1, 4096)
	if err != nil {
		return
	}
	defer a.Close()
	var br bufRing
	f.BufRing = br.register(r, a, bufGroup) == nil
	defer br.unmap()
	f.RegisteredBuffers = registerArena(r, a) == nil
	f.MultishotAccept = probeMultishotAccept(r)
	if f.BufRing {
		f.MultishotRecv = probeMultishotRecv(r)
	}
	if f.RegisteredBuffers {
		f.FixedBufferSend = probeFixedSend(r, a)
	}
}

// runProbe submits the SQEs fill prepares and returns the results of the
// first n completions by user_data.
func runProbe(r *giouring.Ring, n int, fill func(get func(ud uint64) *giouring.SubmissionQueueEntry)) map[uint64]int32 {
	fill(func(ud uint64) *giouring.SubmissionQueueEntry {
		e := r.GetSQE()
		*e = giouring.SubmissionQueueEntry{UserData: ud}
		return e
	})
	res := map[uint64]int32{}
	ts := syscall.NsecToTimespec(int64(1e9))
	for len(res) < n {
		if _, err := r.SubmitAndWaitTimeout(uint32(n-len(res)), &ts, nil); err != nil && err != unix.EINTR {
			break
		}
		for {
			cqe, err := r.PeekCQE()
			if err != nil || cqe == nil {
				break
			}
			res[cqe.UserData] = cqe.Res
			r.CQAdvance(1)
		}
	}
	return res
}

// probeMultishotAccept arms a multishot accept and cancels it: a kernel
// without the flag rejects the accept with EINVAL instead.
func probeMultishotAccept(r *giouring.Ring) bool {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	if unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}) != nil || unix.Listen(fd, 1) != nil {
		return false
	}
	res := runProbe(r, 2, func(get func(uint64) *giouring.SubmissionQueueEntry) {
		e := get(1)
		e.OpCode, e.Fd, e.IoPrio = giouring.OpAccept, int32(fd), giouring.AcceptMultishot
		c := get(2)
		c.OpCode, c.Fd, c.Addr = giouring.OpAsyncCancel, -1, 1
	})
	return res[1] == -int32(unix.ECANCELED)
}

func probeMultishotRecv(r *giouring.Ring) bool {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	res := runProbe(r, 2, func(get func(uint64) *giouring.SubmissionQueueEntry) {
		e := get(1)
		e.OpCode, e.Fd, e.IoPrio = giouring.OpRecv, int32(fds[0]), giouring.RecvMultishot
		e.Flags, e.BufIG = giouring.SqeBufferSelect, bufGroup
		c := get(2)
		c.OpCode, c.Fd, c.Addr = giouring.OpAsyncCancel, -1, 1
	})
	return res[1] == -int32(unix.ECANCELED)
}

func probeFixedSend(r *giouring.Ring, a *mempool.Arena) bool {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	res := runProbe(r, 1, func(get func(uint64) *giouring.SubmissionQueueEntry) {
		e := get(1)
		e.OpCode, e.Fd, e.Addr, e.Len = giouring.OpSend, int32(fds[0]), uint64(a.Addr(0)), 16
		e.IoPrio, e.BufIG = giouring.RecvsendFixedBuf, 0
	})
	return res[1] == 16
}

// String is the probe as `ringproxy version` prints it.
func (f Features) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kernel %s\n", f.Kernel)
	if f.Err != nil {
		fmt.Fprintf(&b, "io_uring: %v\n", f.Err)
		return b.String()
	}
	for _, x := range f.List() {
		mark := "no"
		if x.OK {
			mark = "yes"
		}
		fmt.Fprintf(&b, "  %-30s %s\n", x.Name, mark)
	}
	fmt.Fprintf(&b, "  %-30s %s\n", "ring setup flags", setupFlagNames(f.SetupFlags))
	return b.String()
}

func setupFlagNames(flags uint32) string {
	names := []struct {
		bit  uint32
		name string
	}{
		{giouring.SetupSubmitAll, "submit-all"},
		{giouring.SetupCoopTaskrun, "coop-taskrun"},
		{giouring.SetupTaskrunFlag, "taskrun-flag"},
		{giouring.SetupSingleIssuer, "single-issuer"},
		{giouring.SetupDeferTaskrun, "defer-taskrun"},
	}
	var out []string
	for _, n := range names {
		if flags&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, " ")
}
