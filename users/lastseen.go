package users

import (
	"sync"
	"time"

	"github.com/parleyhq/parley/id"
)

// lastSeen coalesces device activity in memory: every authenticated request
// records (user, device, ip, time) here and only the newest record per
// device is written, in one batch per flush, instead of a write per request.
type lastSeen struct {
	mu      sync.Mutex
	pending map[deviceKey]LastSeen
}

type deviceKey struct {
	user   id.UserID
	device id.DeviceID
}

func newLastSeen() *lastSeen { return &lastSeen{pending: map[deviceKey]LastSeen{}} }

func (l *lastSeen) record(user id.UserID, device id.DeviceID, ip string, at time.Time) {
	l.mu.Lock()
	l.pending[deviceKey{user, device}] = LastSeen{UserID: user, DeviceID: device, IP: ip, At: at}
	l.mu.Unlock()
}

func (l *lastSeen) drain() []LastSeen {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]LastSeen, 0, len(l.pending))
	for _, v := range l.pending {
		out = append(out, v)
	}
	clear(l.pending)
	return out
}
