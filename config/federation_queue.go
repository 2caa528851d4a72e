package config

import "time"

// FederationQueue tunes the durable outbound federation queue
// (federation.queue): retries of a destination that does not answer and
// catch-up of one that was away.
type FederationQueue struct {
	// BackoffInitial is the wait after a destination's first failed
	// transaction; every further failure doubles it, up to BackoffMax. An
	// inbound request from the destination ends the wait at once.
	BackoffInitial time.Duration `yaml:"backoff_initial"`
	// BackoffMax caps the wait between attempts.
	BackoffMax time.Duration `yaml:"backoff_max"`
	// CatchUpThreshold: when more PDUs than this wait for a destination,
	// it gets only the newest event of each room and pulls the gap with
	// get_missing_events (spec: the receiver fills holes in the graph).
	CatchUpThreshold int `yaml:"catch_up_threshold"`
}

// DefaultFederationQueue waits 2 s after a first failure, at most an hour,
// and catches up once more than 500 PDUs wait.
func DefaultFederationQueue() FederationQueue {
	return FederationQueue{BackoffInitial: 2 * time.Second, BackoffMax: time.Hour, CatchUpThreshold: 500}
}

// validate adds the queue section's problems.
func (q *FederationQueue) validate(add func(format string, args ...any)) {
	if q.BackoffInitial <= 0 {
		add("federation.queue.backoff_initial: must be positive")
	}
	if q.BackoffMax < q.BackoffInitial {
		add("federation.queue.backoff_max: must be at least backoff_initial")
	}
	if q.CatchUpThreshold < 50 {
		add("federation.queue.catch_up_threshold: must be at least 50 (one transaction), got %d", q.CatchUpThreshold)
	}
}
