package app

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// connReturner is a handler that takes connections over and gives them
// back for their next request (the client API's parked long-polls).
type connReturner interface {
	ReturnConnectionsTo(handBack func(net.Conn))
}

// reacceptListener is a listener whose Accept also returns connections
// handed back to it: a handler that hijacked a connection (a parked
// long-poll) returns it after its answer, and the http.Server serves it
// again as if newly accepted, reading the client's next request.
type reacceptListener struct {
	net.Listener
	returned chan net.Conn
	accepted chan acceptResult
	start    sync.Once
	// done is closed by Close; stopped when the underlying listener
	// failed for good (err says why).
	done, stopped chan struct{}
	closeOnce     sync.Once
	err           error
	logger        *slog.Logger
}

type acceptResult struct {
	conn net.Conn
	err  error
}

func newReacceptListener(ln net.Listener) *reacceptListener {
	return &reacceptListener{Listener: ln, returned: make(chan net.Conn), accepted: make(chan acceptResult),
		done: make(chan struct{}), stopped: make(chan struct{}), logger: slog.New(slog.DiscardHandler)}
}

// withLogger makes the listener report accept failures to logger.
func (l *reacceptListener) withLogger(logger *slog.Logger) *reacceptListener {
	l.logger = logger
	return l
}

// Accept returns the next connection, new or handed back.
func (l *reacceptListener) Accept() (net.Conn, error) {
	l.start.Do(func() { go l.acceptLoop() })
	select {
	case c := <-l.returned:
		return c, nil
	case r := <-l.accepted:
		return r.conn, r.err
	case <-l.stopped:
		return nil, l.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// acceptLoop accepts from the underlying listener, so that Accept can
// wait for a new connection and a returned one at once. It retries a
// temporary failure (out of file descriptors) itself, with net/http's
// backoff: passed on, it would make the http.Server sleep before its
// next Accept, and the connections handed back meanwhile (whose clients
// already sent their next request) would wait for it.
func (l *reacceptListener) acceptLoop() {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil && errors.Is(err, net.ErrClosed) {
			l.err = err
			close(l.stopped)
			return
		}
		if ne, ok := err.(interface{ Temporary() bool }); ok && ne.Temporary() {
			if backoff == 0 {
				backoff = 5 * time.Millisecond
				l.logger.Warn("accept failed; retrying", slog.String("error", err.Error()))
			} else {
				backoff = min(2*backoff, time.Second)
			}
			select {
			case <-time.After(backoff):
			case <-l.done:
				return
			}
			continue
		}
		backoff = 0
		select {
		case l.accepted <- acceptResult{c, err}:
		case <-l.done:
			if c != nil {
				_ = c.Close()
			}
			return
		}
	}
}

// Return hands c back: the server's next Accept returns it. Once the
// listener is closed c is closed instead.
func (l *reacceptListener) Return(c net.Conn) {
	select {
	case l.returned <- c:
	case <-l.done:
		_ = c.Close()
	case <-l.stopped:
		_ = c.Close()
	}
}

// Close closes the underlying listener; connections handed back from now
// on are closed.
func (l *reacceptListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}
