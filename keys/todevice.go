package keys

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/syncer"
)

// toDeviceLimit is how many to-device messages one sync carries; the
// rest wait for the next (the token then stops at the last one given).
const toDeviceLimit = 100

// maxToDeviceRecipients bounds one send's recipients (users × devices).
const maxToDeviceRecipients = 10000

// SendToDevice handles PUT /sendToDevice/{eventType}/{txnId}: each message
// goes to one device of a user or, for "*", to all of them; local devices
// get it in their sync stream, remote ones through m.direct_to_device.
// The same txnId from the same device is delivered once (spec:
// "Transaction identifiers").
func (s *Service) SendToDevice(ctx context.Context, sender id.UserID, device id.DeviceID, eventType, txnID string,
	messages map[id.UserID]map[id.DeviceID]json.RawMessage) error {
	if eventType == "" {
		return mxerr.InvalidParam.Msg("event type is empty")
	}
	var local []ToDeviceMessage
	remote := map[id.ServerName]map[id.UserID]map[id.DeviceID]json.RawMessage{}
	n := 0
	for u, devs := range messages {
		if _, err := id.ParseUserID(string(u)); err != nil {
			return mxerr.InvalidParam.Msgf("%q is not a user id", u)
		}
		n += len(devs)
		if !s.isLocal(u) {
			if remote[u.Server()] == nil {
				remote[u.Server()] = map[id.UserID]map[id.DeviceID]json.RawMessage{}
			}
			remote[u.Server()][u] = devs
			continue
		}
		for d, content := range devs {
			msg, err := json.Marshal(map[string]any{"sender": sender, "type": eventType, "content": content})
			if err != nil {
				return mxerr.BadJSON.Msgf("messages.%s.%s is not JSON", u, d)
			}
			local = append(local, ToDeviceMessage{User: u, Device: d, Message: msg})
		}
	}
	if n > maxToDeviceRecipients {
		return mxerr.TooLarge.WithStatus(400).Msgf("at most %d recipients per send", maxToDeviceRecipients)
	}
	txn := TxnKey{Sender: string(sender), Device: device, TxnID: txnID}
	if len(remote) > 0 {
		// Remote messages are queued (durably) before the transaction id
		// is recorded, under a message_id derived from it: a crash in
		// between makes the client retry and queue them again, and the
		// receiver drops the copy by its message_id.
		seen, err := s.store.ToDeviceTxnSeen(ctx, txn)
		if err != nil {
			return err
		}
		if seen {
			return nil
		}
		if err := s.sendRemoteToDevice(ctx, sender, eventType, messageID(txn), remote); err != nil {
			return err
		}
	}
	pos, recipients, dup, err := s.store.SendToDevice(ctx, txn, local)
	if err != nil || dup {
		return err
	}
	if len(recipients) > 0 {
		s.notifier.Notify(syncer.Change{Stream: syncer.StreamToDevice, Pos: pos, Users: recipients})
	}
	return nil
}

// messageID is the m.direct_to_device message_id of a local send: the
// same for every retry of it, at most 32 characters (spec).
func messageID(txn TxnKey) string {
	sum := sha256.Sum256([]byte(txn.Sender + "\x00" + string(txn.Device) + "\x00" + txn.TxnID))
	return base64.RawURLEncoding.EncodeToString(sum[:24])
}

// sendRemoteToDevice queues one m.direct_to_device per server; an error
// of the queue fails the send, which the client retries.
func (s *Service) sendRemoteToDevice(ctx context.Context, sender id.UserID, eventType, messageID string,
	remote map[id.ServerName]map[id.UserID]map[id.DeviceID]json.RawMessage) error {
	edus := s.eduSender()
	for server, msgs := range remote {
		if edus == nil {
			s.logger.InfoContext(ctx, "to-device message for a remote server dropped: no federation sender",
				slog.String("destination", string(server)))
			continue
		}
		content, err := json.Marshal(map[string]any{"sender": sender, "type": eventType,
			"message_id": messageID, "messages": msgs})
		if err != nil {
			return mxerr.BadJSON.Msg("messages: not JSON")
		}
		if err := edus.SendEDU(ctx, server, "m.direct_to_device", content); err != nil {
			return fmt.Errorf("queue m.direct_to_device for %s: %w", server, err)
		}
	}
	return nil
}

// HandleDirectToDevice stores an inbound m.direct_to_device EDU of origin
// for the local devices it names (spec server-server-api "Send-to-device
// messaging"); a message_id seen before from origin is ignored.
func (s *Service) HandleDirectToDevice(ctx context.Context, origin id.ServerName, content json.RawMessage) error {
	var edu struct {
		Sender    id.UserID                                     `json:"sender"`
		Type      string                                        `json:"type"`
		MessageID string                                        `json:"message_id"`
		Messages  map[id.UserID]map[id.DeviceID]json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal(content, &edu); err != nil {
		return mxerr.BadJSON.Msg("m.direct_to_device: malformed content")
	}
	if _, err := id.ParseUserID(string(edu.Sender)); err != nil || edu.Sender.Server() != origin {
		return mxerr.Forbidden.Msg("m.direct_to_device: the sender is not a user of the origin")
	}
	if edu.Type == "" || edu.MessageID == "" {
		return mxerr.BadJSON.Msg("m.direct_to_device: type and message_id are required")
	}
	var local []ToDeviceMessage
	for u, devs := range edu.Messages {
		if !s.isLocal(u) {
			continue
		}
		for d, c := range devs {
			msg, err := json.Marshal(map[string]any{"sender": edu.Sender, "type": edu.Type, "content": c})
			if err != nil {
				return mxerr.BadJSON.Msg("m.direct_to_device: malformed message")
			}
			local = append(local, ToDeviceMessage{User: u, Device: d, Message: msg})
		}
	}
	pos, recipients, dup, err := s.store.SendToDevice(ctx, TxnKey{Sender: string(origin), TxnID: edu.MessageID}, local)
	if err != nil || dup {
		return err
	}
	if len(recipients) > 0 {
		s.notifier.Notify(syncer.Change{Stream: syncer.StreamToDevice, Pos: pos, Users: recipients})
	}
	return nil
}

// ToDeviceSource is the to-device stream of /sync (and of the WebSocket
// sync stream, which is the same): a device's messages wait until it
// syncs with a token past them — the acknowledgement — and are then
// deleted (spec: "Send-to-Device messaging", server behaviour).
type ToDeviceSource struct{ Keys *Service }

var _ syncer.StreamSource = ToDeviceSource{}

// Stream implements syncer.StreamSource.
func (ToDeviceSource) Stream() syncer.Stream { return syncer.StreamToDevice }

// CurrentPos implements syncer.StreamSource.
func (t ToDeviceSource) CurrentPos(ctx context.Context) (int64, error) {
	return t.Keys.store.ToDevicePos(ctx)
}

// Fill implements syncer.StreamSource.
func (t ToDeviceSource) Fill(ctx context.Context, q syncer.StreamQuery, resp *syncer.Response) error {
	st := t.Keys.store
	if q.Device == "" {
		return nil
	}
	// Those up to since are acknowledged: the client holds a token past them.
	msgs, err := st.TakeToDevice(ctx, q.User, q.Device, q.Since, q.Pos, toDeviceLimit)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		resp.ToDevice.Events = append(resp.ToDevice.Events, m.Message)
	}
	if len(msgs) == toDeviceLimit {
		resp.HoldPos(syncer.StreamToDevice, msgs[len(msgs)-1].Pos)
	}
	return nil
}
