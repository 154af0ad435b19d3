package session

import (
	"math"
	"time"

	"golang.org/x/sys/unix"

	"ringproxy/ring"
	"ringproxy/session/health"
)

// serverOpts are set on every server socket: a proxy relays what it
// receives at once, so Nagle would only add latency.
var serverOpts = ring.SockOpts{NoDelay: true}

// connect starts the next connect attempt of s on s.srv, whose slot s
// holds.
func (w *worker) connect(s *Session) {
	srv := s.srv
	fd, err := ring.StreamSocket(&srv.sa)
	if health.IsLocalShortage(err) {
		w.backOff(s)
		return
	}
	if s.tries > 0 {
		w.cnt.Retries++
	}
	s.tries++
	if err == nil {
		err = serverOpts.Apply(fd)
		if err != nil {
			ring.CloseNow(fd)
		}
	}
	if err != nil {
		w.connectFailed(s, err)
		return
	}
	s.si[serverSide] = streamInterface{fd: fd, state: siCon}
	s.connAt = w.now
	s.timedCn = false
	s.inflight++
	w.cnt.ConnAttempts++
	w.eng.Connect(fd, &srv.sa, s.tag(ring.OpConnect, serverSide))
	w.schedule(s)
}

func (w *worker) onConnect(s *Session, c *ring.Completion) {
	if s.state == stClosing {
		return
	}
	if c.Res < 0 {
		err := error(unix.Errno(-c.Res))
		if s.timedCn {
			err = errConnectTimeout
		}
		w.eng.Close(s.si[serverSide].fd)
		s.si[serverSide] = streamInterface{fd: -1, state: siIni}
		if health.IsLocalShortage(err) { // no local port or memory: not the server's doing
			s.tries--
			w.backOff(s)
			return
		}
		// The server refused or did not answer: that is evidence about it,
		// unlike a failure to make our own socket.
		s.be.monitor.Observe(s.srv.idx, false, connectReason(err))
		w.connectFailed(s, err)
		return
	}
	s.be.monitor.Observe(s.srv.idx, true, "")
	s.state = stForwarding
	s.connTime = w.now - s.connAt
	w.srvCnt[s.srv.gidx].Sessions++
	s.si[serverSide].state = siEst
	s.si[serverSide].lastAct = w.now
	if s.be.cfg.SendProxy != "" {
		w.sendProxyHeader(s)
	}
	w.armRecv(s, serverSide)
	w.flush(s, serverSide)
	w.armRecv(s, clientSide) // the request channel may have filled while connecting
	w.schedule(s)
}

// connectFailed retries on the same server, or, with redispatch, makes
// the last retry on another one; it ends s once retries are spent.
func (w *worker) connectFailed(s *Session, err error) {
	w.cnt.ConnFailures++
	w.srvCnt[s.srv.gidx].ConnFailures++
	be := s.be.cfg
	if s.tries > be.Retries {
		w.log.Warn("connect failed", "server", be.Name+"/"+s.srv.cfg.Name, "addr", s.srv.cfg.Address, "err", err, "tries", s.tries)
		w.abort(s, ReasonConnectFailed)
		return
	}
	w.log.Debug("connect failed, retrying", "server", be.Name+"/"+s.srv.cfg.Name, "addr", s.srv.cfg.Address, "err", err, "try", s.tries)
	if be.Redispatch && s.tries == be.Retries && len(s.be.servers) > 1 {
		w.cnt.Redispatches++
		failed := s.srv
		w.releaseServer(s)
		w.assign(s, failed)
		return
	}
	w.connect(s)
}

// socketBackoff is how long a session waits when our own fd table (or
// local port range, or memory) is exhausted.
const socketBackoff = 100 * time.Millisecond

// backOff makes s wait socketBackoff before its next connect attempt: the
// shortage is ours, not the server's, so it spends no retry and is not
// reported to the server's health (timeout_client still runs).
func (w *worker) backOff(s *Session) {
	w.cnt.SocketBackoffs++
	s.backoffUntil = w.now + int64(socketBackoff)
	w.schedule(s)
}

// reasonBackoff marks a timer that retries a socket, not a termination.
const reasonBackoff Reason = 255

type connectTimeoutError struct{}

func (connectTimeoutError) Error() string { return "connect timeout" }

var errConnectTimeout error = connectTimeoutError{}

// deadline is when s times out next and what that would mean. While the
// server connects, timeout_connect and timeout_client race; once
// forwarding, each side has its own inactivity timeout, or the tunnel
// timeout covers both when set.
func (w *worker) deadline(s *Session) (int64, Reason) {
	fe, be := s.fe.cfg, s.be.cfg
	cli := &s.si[clientSide]
	srv := &s.si[serverSide]
	if s.state == stQueued {
		return s.queuedAt + int64(queueTimeout(be)), ReasonQueueTimeout
	}
	if s.state == stHeader {
		return s.accepted + int64(headerTimeout(fe)), ReasonBadProxy
	}
	if s.backoffUntil != 0 {
		if d := cli.lastAct + int64(fe.TimeoutClient); d < s.backoffUntil {
			return d, ReasonClientTimeout
		}
		return s.backoffUntil, reasonBackoff
	}
	if s.state == stForwarding && be.TimeoutTunnel > 0 {
		if cli.lastAct < srv.lastAct {
			return srv.lastAct + int64(be.TimeoutTunnel), ReasonClientTimeout
		}
		return cli.lastAct + int64(be.TimeoutTunnel), ReasonServerTimeout
	}
	at, why := int64(math.MaxInt64), ReasonDone
	if waitingOn(&s.req, &s.rep) {
		at, why = cli.lastAct+int64(fe.TimeoutClient), ReasonClientTimeout
	}
	switch srv.state {
	case siCon:
		if d := s.connAt + int64(be.TimeoutConnect); d < at {
			at, why = d, ReasonConnectFailed
		}
	case siEst:
		if d := srv.lastAct + int64(be.TimeoutServer); d < at && waitingOn(&s.rep, &s.req) {
			at, why = d, ReasonServerTimeout
		}
	}
	return at, why
}

// waitingOn says whether a side can be idle: it may still send (from, its
// produced channel, has no FIN) or has bytes to take (to, its consumed
// channel, is not empty). As in HAProxy, a side that has sent its FIN and
// has nothing queued for it cannot time out; only its peer can.
func waitingOn(from, to *channel) bool { return !from.eof || to.pending() }

// schedule makes sure the timer fires no later than s's deadline. Only
// moves that bring the deadline nearer need it: activity that pushes the
// deadline later is found when the early timer fires.
func (w *worker) schedule(s *Session) {
	if at, _ := w.deadline(s); s.heapIdx < 0 || at < s.timerAt {
		w.timers.set(s, at)
	}
}

// expire handles s's timer: re-arm it if activity moved the deadline,
// else act on the timeout.
func (w *worker) expire(s *Session) {
	at, why := w.deadline(s)
	if at > w.now {
		w.timers.set(s, at)
		return
	}
	w.timers.remove(s)
	if why == ReasonBadProxy {
		w.badHeader(s, proxyTimeout)
		return
	}
	if why == reasonBackoff {
		s.backoffUntil = 0
		w.connect(s)
		return
	}
	if why == ReasonQueueTimeout {
		w.log.Warn("queue timeout", "backend", s.be.cfg.Name, "waited", time.Duration(w.now-s.queuedAt))
	}
	if why == ReasonConnectFailed {
		// Cancelling the connect completes it -ECANCELED, which retries.
		s.timedCn = true
		w.cnt.ConnTimeouts++
		w.eng.CancelFd(s.si[serverSide].fd, s.tag(ring.OpCancel, serverSide))
		return
	}
	w.abort(s, why)
}
