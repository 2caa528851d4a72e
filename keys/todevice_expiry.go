package keys

import (
	"context"
	"log/slog"
	"time"
)

// To-device messages wait for their device until it syncs past them (or
// is deleted, which takes them along: ON DELETE CASCADE). A device that
// never syncs again — a lost phone, a browser profile wiped without a
// logout — would keep its inbox forever, so undelivered messages expire
// after Config.ToDeviceRetention (e2ee.to_device_retention, 30 days by
// default: longer than any holiday, and the keys they carry are
// requested again or restored from backup by a device that comes back
// later).

// toDeviceExpiryEvery is how often expired messages are deleted: a
// fraction of the retention, between a second and an hour.
func (s *Service) toDeviceExpiryEvery() time.Duration {
	return min(max(s.cfg.ToDeviceRetention/4, time.Second), time.Hour)
}

// runToDeviceExpiry deletes expired to-device messages until ctx ends.
func (s *Service) runToDeviceExpiry(ctx context.Context) {
	t := time.NewTicker(s.toDeviceExpiryEvery())
	defer t.Stop()
	for {
		n, err := s.store.ExpireToDevice(ctx, time.Now().Add(-s.cfg.ToDeviceRetention))
		switch {
		case err != nil && ctx.Err() == nil:
			s.logger.WarnContext(ctx, "expire to-device messages", slog.String("error", err.Error()))
		case n > 0:
			s.logger.InfoContext(ctx, "expired undelivered to-device messages", slog.Int64("count", n),
				slog.Duration("retention", s.cfg.ToDeviceRetention))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
