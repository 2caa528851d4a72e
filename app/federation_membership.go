package app

import (
	"context"
	"errors"

	"github.com/parleyhq/parley/federation"
	"github.com/parleyhq/parley/federation/fedclient"
	"github.com/parleyhq/parley/federation/keyring"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/users"
)

// inboundPipeline is what federated membership needs of the inbound PDU
// pipeline (*rooms.Inbound): importing a room joined over federation,
// accepting a PDU sent to us directly, and keeping memberships in rooms
// we are not in.
type inboundPipeline interface {
	rooms.RoomImporter
	rooms.InviteStore
	AcceptPDU(ctx context.Context, origin id.ServerName, ev *event.Event) error
}

// wireFederatedMembership turns on joins, leaves, invites and knocks
// across servers (issue #7): local users' handshakes go out through the
// federation client, and rs answers other servers' (the returned
// federation.Membership goes into federation.Deps).
func wireFederatedMembership(rs *rooms.Service, client *fedclient.Client, kr *keyring.Keyring,
	in inboundPipeline, accounts *storage.Accounts) federation.Membership {
	rs.SetFederation(rooms.FederationDeps{
		Remote:   federation.RemoteMembership{Client: client},
		Keys:     kr.VerifyKey,
		Importer: in,
		Invites:  in,
		Accept:   in.AcceptPDU,
		UserExists: func(ctx context.Context, user id.UserID) (bool, error) {
			_, err := accounts.Account(ctx, user)
			if errors.Is(err, users.ErrNotFound) {
				return false, nil
			}
			return err == nil, err
		},
	})
	return rs
}
