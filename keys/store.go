package keys

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/parleyhq/parley/id"
)

// ErrNotFound is returned by stores for an absent row.
var ErrNotFound = errors.New("keys: not found")

// ErrKeyConflict is returned when a one-time key id is uploaded again with
// other contents.
var ErrKeyConflict = errors.New("keys: one-time key already exists with other contents")

// OneTimeKey is one one-time or fallback key: "algorithm:key_id" → Key.
type OneTimeKey struct {
	Algorithm string
	KeyID     string
	Key       json.RawMessage
}

// DeviceKeys is one device's identity keys as it signed them, with the
// device's display name (shown in unsigned.device_display_name).
type DeviceKeys struct {
	User        id.UserID
	Device      id.DeviceID
	Keys        json.RawMessage
	DisplayName string
}

// ClaimRequest asks for one key of Algorithm of a device.
type ClaimRequest struct {
	User      id.UserID
	Device    id.DeviceID
	Algorithm string
}

// ClaimedKey is a claimed one-time key (or fallback key).
type ClaimedKey struct {
	User   id.UserID
	Device id.DeviceID
	KeyID  string // algorithm:key_id
	Key    json.RawMessage
}

// Signature is one signature uploaded with /keys/signatures/upload:
// Signer's key SignerKeyID signed TargetUser's key TargetKey (a device id
// or a cross-signing public key).
type Signature struct {
	TargetUser  id.UserID
	TargetKey   string
	Signer      id.UserID
	SignerKeyID string
	Signature   string
}

// ToDeviceMessage is one message for one device ("*" for all the user's
// devices).
type ToDeviceMessage struct {
	User    id.UserID
	Device  id.DeviceID
	Message json.RawMessage // {"sender","type","content"}
}

// TxnKey identifies a to-device send for idempotency: a local sender's
// device and txnId, or a remote origin ("" device) and message_id.
type TxnKey struct {
	Sender string
	Device id.DeviceID
	TxnID  string
}

// PendingMessage is a stored to-device message and its position.
type PendingMessage struct {
	Pos     int64
	Message json.RawMessage
}

// BackupVersion is one version of a user's key backup.
type BackupVersion struct {
	Version   int64
	Algorithm string
	AuthData  json.RawMessage
	ETag      int64
	Count     int64
}

// BackupKey is one room key in a backup.
type BackupKey struct {
	Room              id.RoomID
	SessionID         string
	FirstMessageIndex int64
	ForwardedCount    int64
	IsVerified        bool
	SessionData       json.RawMessage
}

// KeyStore keeps devices' keys.
type KeyStore interface {
	// UploadKeys stores a device's upload in one transaction: deviceKeys
	// (nil: unchanged), one-time keys added (ErrKeyConflict for a known id
	// with other contents), fallback keys replacing the device's key of
	// their algorithm. New or changed device keys are a device list change:
	// its position is returned (0 when there was none).
	UploadKeys(ctx context.Context, user id.UserID, device id.DeviceID, deviceKeys json.RawMessage, otks, fallbacks []OneTimeKey) (int64, error)
	// KeyCounts counts the device's unclaimed one-time keys per algorithm
	// and lists the algorithms of its fallback keys not handed out yet
	// (never nil), in one read: every sync asks.
	KeyCounts(ctx context.Context, user id.UserID, device id.DeviceID) (map[string]int, []string, error)
	// DeviceKeys returns the keys of every device of users that has some.
	DeviceKeys(ctx context.Context, users []id.UserID) ([]DeviceKeys, error)
	// AllDevices returns every device of user, Keys nil when it uploaded
	// none.
	AllDevices(ctx context.Context, user id.UserID) ([]DeviceKeys, error)
	// ClaimKeys hands out, per request, the device's oldest one-time key of
	// the algorithm (deleting it), else its fallback key (marking it used).
	ClaimKeys(ctx context.Context, reqs []ClaimRequest) ([]ClaimedKey, error)
}

// CrossSigningStore keeps cross-signing keys and signatures.
type CrossSigningStore interface {
	// CrossSigningKeys returns users' keys: user → usage → key object.
	CrossSigningKeys(ctx context.Context, users []id.UserID) (map[id.UserID]map[string]json.RawMessage, error)
	// PutCrossSigningKeys stores keys by usage and records a device list
	// change of user, whose position it returns.
	PutCrossSigningKeys(ctx context.Context, user id.UserID, keys map[string]json.RawMessage) (int64, error)
	// PutSignatures stores signatures and records a device list change of
	// each target user: user → position.
	PutSignatures(ctx context.Context, sigs []Signature) (map[id.UserID]int64, error)
	// Signatures returns the uploaded signatures of users' keys.
	Signatures(ctx context.Context, users []id.UserID) ([]Signature, error)
}

// DeviceListStore is the device lists stream.
type DeviceListStore interface {
	DeviceListPos(ctx context.Context) (int64, error)
	// MarkDeviceListChanged records a change of user's devices (a remote
	// user a server told us of) and returns its position.
	MarkDeviceListChanged(ctx context.Context, user id.UserID) (int64, error)
	// ChangedUsers returns the users with a device list change in
	// (after, upTo] who are viewer or share a joined room with viewer.
	ChangedUsers(ctx context.Context, viewer id.UserID, after, upTo int64) ([]id.UserID, error)
	// MembershipDeltas reads the membership changes of the timeline range
	// (after, upTo] in rooms viewer is or was joined to: joined are users
	// who started sharing a room with viewer (and, when viewer joined,
	// the room's members), left are users who no longer share any joined
	// room with viewer.
	MembershipDeltas(ctx context.Context, viewer id.UserID, after, upTo int64) (joined, left []id.UserID, err error)
	// UsersSharingRoom returns the users joined to a room user is joined
	// to (user aside).
	UsersSharingRoom(ctx context.Context, user id.UserID) ([]id.UserID, error)
	// LatestDeviceListPos returns the position of user's latest device
	// list change and the one before it (0 when none).
	LatestDeviceListPos(ctx context.Context, user id.UserID) (latest, prev int64, err error)
}

// ToDeviceStore is the to-device mailbox.
type ToDeviceStore interface {
	ToDevicePos(ctx context.Context) (int64, error)
	// ToDeviceTxnSeen reports whether txn was recorded by a SendToDevice.
	ToDeviceTxnSeen(ctx context.Context, txn TxnKey) (bool, error)
	// SendToDevice stores msgs for local devices ("*" expands to every
	// device of the user; unknown devices are skipped) under one new
	// position, unless txn was seen before (dup). It returns the position
	// and the users who got a message.
	SendToDevice(ctx context.Context, txn TxnKey, msgs []ToDeviceMessage) (pos int64, recipients []id.UserID, dup bool, err error)
	// TakeToDevice deletes the device's messages at or below after — the
	// client holds a token past them, it has them — and returns up to
	// limit of those in (after, upTo], oldest first, in one round trip.
	TakeToDevice(ctx context.Context, user id.UserID, device id.DeviceID, after, upTo int64, limit int) ([]PendingMessage, error)
	// ExpireToDevice deletes to-device messages stored before before
	// (keys/todevice_expiry.go), and to-device transaction ids older than
	// a day; it returns how many messages it deleted.
	ExpireToDevice(ctx context.Context, before time.Time) (int64, error)
}

// BackupStore keeps key backups.
type BackupStore interface {
	CreateBackup(ctx context.Context, user id.UserID, algorithm string, authData json.RawMessage) (int64, error)
	// Backup returns a version (0: the latest) with its count and etag;
	// ErrNotFound when there is none or it was deleted.
	Backup(ctx context.Context, user id.UserID, version int64) (BackupVersion, error)
	UpdateBackup(ctx context.Context, user id.UserID, version int64, authData json.RawMessage) error
	DeleteBackup(ctx context.Context, user id.UserID, version int64) error
	// PutBackupKeys stores keys in the version, each replacing the stored
	// one of its session only when better (spec: verified, then lower
	// first_message_index, then lower forwarded_count).
	PutBackupKeys(ctx context.Context, user id.UserID, version int64, keys []BackupKey) (BackupVersion, error)
	// BackupKeys returns the version's keys, of one room ("" all) and one
	// session ("" all).
	BackupKeys(ctx context.Context, user id.UserID, version int64, room id.RoomID, session string) ([]BackupKey, error)
	DeleteBackupKeys(ctx context.Context, user id.UserID, version int64, room id.RoomID, session string) (BackupVersion, error)
}

// Store is every store of the service; one storage type implements it.
type Store interface {
	KeyStore
	CrossSigningStore
	DeviceListStore
	ToDeviceStore
	BackupStore
	DehydratedStore
	RemoteDeviceStore
	OutboxStore
	ResyncStore
}
