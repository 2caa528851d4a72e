package clientapi

import "sync"

// maxAnswering bounds the goroutines that answer parked long-polls. A
// change can end thousands of waits at once (and a crowd's time-outs come
// hundreds a second); a goroutine each would bring back, for as long as
// the answers take, the stacks and the memory that parking saves. The
// answers are mostly database round trips, so a few dozen keep two cores
// and the pool busy.
const maxAnswering = 32

// answerQueue holds the parked long-polls whose wait ended, until a worker
// answers them: those woken by a change first (a client waits for them),
// time-outs after.
type answerQueue struct {
	mu              sync.Mutex
	woken, timedOut []*parkedPoll
	workers         int
}

// push queues p, and starts a worker when fewer than maxAnswering run. It
// returns at once: the notifier calls it under its lock.
func (q *answerQueue) push(p *parkedPoll, woken bool) {
	q.mu.Lock()
	if woken {
		q.woken = append(q.woken, p)
	} else {
		q.timedOut = append(q.timedOut, p)
	}
	start := q.workers < maxAnswering
	if start {
		q.workers++
	}
	q.mu.Unlock()
	if start {
		go q.work()
	}
}

// work answers queued long-polls until none is left.
func (q *answerQueue) work() {
	for {
		p, woken, ok := q.pop()
		if !ok {
			return
		}
		p.answer(woken)
	}
}

func (q *answerQueue) pop() (*parkedPoll, bool, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if p, ok := shift(&q.woken); ok {
		return p, true, true
	}
	if p, ok := shift(&q.timedOut); ok {
		return p, false, true
	}
	q.workers--
	return nil, false, false
}

// shift takes the first of *s; an emptied queue drops its array, so that
// a burst's backlog is not kept.
func shift(s *[]*parkedPoll) (*parkedPoll, bool) {
	if len(*s) == 0 {
		return nil, false
	}
	p := (*s)[0]
	(*s)[0] = nil
	*s = (*s)[1:]
	if len(*s) == 0 {
		*s = nil
	}
	return p, true
}
