package app

import (
	"net"
	"testing"
)

// failingListener fails every Accept with a temporary error, as a process
// out of file descriptors does, until closed.
type failingListener struct {
	net.Listener
	closed chan struct{}
}

type temporaryError struct{}

func (temporaryError) Error() string   { return "accept: too many open files" }
func (temporaryError) Temporary() bool { return true }
func (temporaryError) Timeout() bool   { return false }

func (l *failingListener) Accept() (net.Conn, error) {
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	default:
		return nil, temporaryError{}
	}
}

func (l *failingListener) Close() error { close(l.closed); return nil }

// TestReacceptListenerServesHandedBackConnectionsWhileAcceptFails: while
// new connections cannot be accepted, Accept still returns the ones
// handed back, and never the temporary error (the http.Server would sleep
// on it before its next Accept).
func TestReacceptListenerServesHandedBackConnectionsWhileAcceptFails(t *testing.T) {
	l := newReacceptListener(&failingListener{closed: make(chan struct{})})
	for i := range 20 {
		c, peer := net.Pipe()
		go l.Return(c)
		got, err := l.Accept()
		if err != nil {
			t.Fatalf("accept %d: %v, want the connection handed back", i, err)
		}
		if got != c {
			t.Fatalf("accept %d: another connection", i)
		}
		c.Close()
		peer.Close()
	}
	l.Close()
	if _, err := l.Accept(); err == nil {
		t.Fatal("accept after Close succeeded")
	}
}
