package app

import (
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/federation"
	"github.com/parleyhq/parley/federation/fedclient"
	"github.com/parleyhq/parley/federation/keyring"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/storage"
)

// newInbound builds the inbound side of federation's room graph (issue
// #7): the rooms domain's PDU pipeline, verifying with the keyring and
// fetching what it lacks over the client, and the processor of PUT
// /send/{txnId} transactions, whose EDUs go to edus (nil drops them).
// The pipeline also imports rooms joined over federation and keeps
// invites to rooms this server is not in: app hands it to the rooms
// service's federated membership as its Importer, Invites and Accept.
func newInbound(svc *rooms.Service, store *storage.Rooms, pool *pgxpool.Pool, kr *keyring.Keyring,
	client *fedclient.Client, edus federation.EDUHandler, logger *slog.Logger) (*rooms.Inbound, *federation.Transactions) {
	in := rooms.NewInbound(svc, store, rooms.InboundDeps{Keys: kr.VerifyKey, Fetcher: federation.Fetcher{Client: client}})
	txns := federation.NewTransactions(in, storage.NewInboundTxns(pool), edus, logger)
	return in, txns
}
