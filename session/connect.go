package session

import (
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
	a := s.srv.addr.Load()
	s.srvAddr = a
	fd, err := ring.StreamSocket(&a.sa)
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
	w.eng.Connect(fd, &a.sa, s.tag(ring.OpConnect, serverSide))
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
		w.log.Warn("connect failed", "server", be.Name+"/"+s.srv.cfg.Name, "addr", s.srvAddr.ap, "err", err, "tries", s.tries)
		w.closeSession(s, ReasonConnectFailed)
		return
	}
	w.log.Debug("connect failed, retrying", "server", be.Name+"/"+s.srv.cfg.Name, "addr", s.srvAddr.ap, "err", err, "try", s.tries)
	if be.Redispatch && s.tries == be.Retries && len(s.be.all()) > 1 {
		w.cnt.Redispatches++
		w.srvCnt[s.srv.gidx].Redispatches++ // on the server it leaves, as HAProxy counts it
		failed := s.srv
		w.releaseServer(s)
		w.assign(s, failed)
		return
	}
	w.srvCnt[s.srv.gidx].Retries++
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

type connectTimeoutError struct{}

func (connectTimeoutError) Error() string { return "connect timeout" }

var errConnectTimeout error = connectTimeoutError{}
