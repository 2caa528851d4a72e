package syncer

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSharedReadNeverAnswersWithAnOlderRead: every caller gets a read that
// began after it called — a sync woken by a commit sees that commit —
// and the callers that arrive while a read is under way share the next.
func TestSharedReadNeverAnswersWithAnOlderRead(t *testing.T) {
	var (
		r       sharedRead
		commits atomic.Int64 // the "database": a position that only grows
		reads   atomic.Int64
		gate    = make(chan struct{})
	)
	read := func(context.Context) (Token, error) {
		pos := commits.Load() // the read sees what was committed when it began
		if reads.Add(1) == 1 {
			<-gate // the first read is slow
		}
		return Token{}.With(StreamTimeline, pos), nil
	}
	first := make(chan Token, 1)
	commits.Add(1)
	go func() {
		tok, err := r.read(context.Background(), read)
		if err != nil {
			t.Error(err)
		}
		first <- tok
	}()
	waitFor(t, func() bool { return reads.Load() == 1 })

	// 50 syncs, each after a commit of its own, while the first read is
	// under way: none may be answered by it.
	const n = 50
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			mine := commits.Add(1)
			tok, err := r.read(context.Background(), read)
			if err != nil {
				t.Error(err)
				return
			}
			if got := tok.Pos(StreamTimeline); got < mine {
				t.Errorf("answered with position %d, before the commit %d that preceded the call", got, mine)
			}
		})
	}
	waitFor(t, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.next != nil && r.next.callers == n
	})
	close(gate)
	wg.Wait()
	if tok := <-first; tok.Pos(StreamTimeline) < 1 {
		t.Errorf("first caller got %d", tok.Pos(StreamTimeline))
	}
	if got := reads.Load(); got != 2 {
		t.Errorf("%d reads for 51 callers, want 2 (the first, then one shared by the 50 that queued)", got)
	}

	// Alone, a caller starts its own read at once.
	commits.Add(1)
	tok, err := r.read(context.Background(), read)
	if err != nil || tok.Pos(StreamTimeline) != commits.Load() || reads.Load() != 3 {
		t.Errorf("a lone caller got %v, %v after %d reads", tok, err, reads.Load())
	}
}

func TestSharedReadErrorsAndCancel(t *testing.T) {
	var r sharedRead
	boom := errors.New("boom")
	if _, err := r.read(context.Background(), func(context.Context) (Token, error) { return Token{}, boom }); !errors.Is(err, boom) {
		t.Errorf("error %v, want boom", err)
	}
	gate := make(chan struct{})
	defer close(gate)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.read(ctx, func(context.Context) (Token, error) { <-gate; return Token{}, nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled caller got %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
