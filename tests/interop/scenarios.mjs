// The scenarios of issue #8 ("Real clients in the test suite"): each is an
// async function run by run.mjs in a process of its own; it throws on the
// first thing a real client does not see as it should.
import {
    assert,
    assertCiphertextOnly,
    createEncryptedRoom,
    fail,
    findEvent,
    joinWhenInvited,
    localpart,
    log,
    login,
    passwordAuth,
    register,
    serverURL,
    stopAll,
    waitFor,
    waitForDecrypted,
    waitForMembership,
    waitForPlain,
} from "./lib.mjs";
import { randomBytes } from "node:crypto";
import { decryptAttachment, encryptAttachment, sha256Base64 } from "./attachment.mjs";

// registerAndLogin: a new account, a password login, and the access token
// of the new device working for whoami (spec: /register, /login, /account/whoami).
async function registerAndLogin() {
    const hs = serverURL(1);
    const name = localpart("alice");
    await register(hs, name);
    const alice = await login(hs, name, { crypto: false });
    try {
        const who = await alice.whoami();
        assert(who.user_id === alice.getUserId(), `whoami says ${who.user_id}, login said ${alice.getUserId()}`);
        assert(who.device_id === alice.getDeviceId(), `whoami device ${who.device_id}, login said ${alice.getDeviceId()}`);
        // A second login is a second device of the same account.
        const again = await login(hs, name, { crypto: false });
        stopAll(again);
        assert(again.getDeviceId() !== alice.getDeviceId(), "two logins got the same device id");
        const { devices } = await alice.getDevices();
        const ids = devices.map((d) => d.device_id).sort();
        assert(ids.includes(alice.getDeviceId()) && ids.includes(again.getDeviceId()), `devices ${ids}`);
        // A wrong password is refused with M_FORBIDDEN.
        try {
            await alice.loginRequest({ type: "m.login.password", identifier: { type: "m.id.user", user: name }, password: "wrong" });
            fail("login with a wrong password succeeded");
        } catch (err) {
            assert(err.errcode === "M_FORBIDDEN", `wrong password: ${err.errcode} ${err.message}`);
        }
    } finally {
        stopAll(alice);
    }
}

// pair registers Alice on hsA and Bob on hsB and logs both in.
async function pair(hsA, hsB, opts = {}) {
    const a = localpart("alice");
    const b = localpart("bob");
    await Promise.all([register(hsA, a), register(hsB, b)]);
    const [alice, bob] = await Promise.all([login(hsA, a, opts), login(hsB, b, opts)]);
    log(`alice ${alice.getUserId()} ${alice.getDeviceId()}, bob ${bob.getUserId()} ${bob.getDeviceId()}`);
    return { alice, bob, bobName: b };
}

// plainRoom: create a room, invite, join, and messages both ways, each seen
// live by the other's running sync.
async function plainRoom(hsA = serverURL(1), hsB = serverURL(1)) {
    const { alice, bob } = await pair(hsA, hsB, { crypto: false });
    try {
        const { room_id: roomId } = await alice.createRoom({ preset: "private_chat", name: "interop plain" });
        await alice.invite(roomId, bob.getUserId());
        await joinWhenInvited(bob, roomId);
        await waitForMembership(alice, roomId, bob.getUserId(), "join");
        assert(bob.getRoom(roomId).name === "interop plain", `bob sees room name ${bob.getRoom(roomId).name}`);

        const hello = `hello bob ${localpart("m")}`;
        const { event_id: e1 } = await alice.sendTextMessage(roomId, hello);
        const ev1 = await waitForPlain(bob, roomId, e1, hello);
        assert(ev1.getSender() === alice.getUserId(), `sender ${ev1.getSender()}`);

        const reply = `hello alice ${localpart("m")}`;
        const { event_id: e2 } = await bob.sendTextMessage(roomId, reply);
        await waitForPlain(alice, roomId, e2, reply);
    } finally {
        stopAll(alice, bob);
    }
}

// encryptedExchange: Alice's message in an encrypted room decrypted by
// Bob's client, then Bob's reply by Alice's; the server holds only
// ciphertext. Returns the clients still running, for more steps.
async function encryptedExchange(hsA, hsB) {
    const { alice, bob, bobName } = await pair(hsA, hsB);
    const roomId = await createEncryptedRoom(alice, [bob.getUserId()]);
    await joinWhenInvited(bob, roomId);
    await waitForMembership(alice, roomId, bob.getUserId(), "join");
    await waitFor(bob, `encryption enabled in ${roomId}`, () => bob.getCrypto().isEncryptionEnabledInRoom(roomId));

    const secret = `the eagle lands at ${localpart("dawn")}`;
    const { event_id: e1 } = await alice.sendTextMessage(roomId, secret);
    log(`alice sent ${e1}`);
    await waitForDecrypted(bob, roomId, e1, secret);
    log(`bob decrypted ${e1}`);
    await assertCiphertextOnly(bob, roomId, e1, secret);

    const reply = `roger, ${localpart("over")}`;
    const { event_id: e2 } = await bob.sendTextMessage(roomId, reply);
    log(`bob sent ${e2}`);
    await waitForDecrypted(alice, roomId, e2, reply);
    log(`alice decrypted ${e2}`);
    await assertCiphertextOnly(alice, roomId, e2, reply);
    return { alice, bob, bobName, roomId, firstEvent: e1, firstBody: secret };
}

async function encryptedRoom() {
    const { alice, bob } = await encryptedExchange(serverURL(1), serverURL(1));
    stopAll(alice, bob);
}

async function federatedEncryptedRoom() {
    const { alice, bob } = await encryptedExchange(serverURL(1), serverURL(2));
    stopAll(alice, bob);
}

async function federatedPlainRoom() {
    await plainRoom(serverURL(1), serverURL(2));
}

// keyBackup: Bob's first device sets up cross-signing, secret storage and
// server-side key backup; after Alice's encrypted message his keys reach
// the backup; a new device of Bob's, given only his recovery key, restores
// the backup and decrypts the message it never got a room key for.
async function keyBackup() {
    const hs = serverURL(1);
    const { alice, bob } = await pair(hs, hs);
    let bob2;
    try {
        const crypto = bob.getCrypto();
        await crypto.bootstrapCrossSigning({ authUploadDeviceSigningKeys: passwordAuth(bob) });
        const recovery = await crypto.createRecoveryKeyFromPassphrase();
        await crypto.bootstrapSecretStorage({
            createSecretStorageKey: async () => recovery,
            setupNewSecretStorage: true,
            setupNewKeyBackup: true,
        });
        assert(await crypto.isCrossSigningReady(), "bob's cross-signing is not ready");
        await waitFor(bob, "secret storage ready", () => crypto.isSecretStorageReady(), {
            describe: async () =>
                `default key ${await bob.secretStorage.getDefaultKeyId()}, ` +
                `cross-signing ${JSON.stringify(await crypto.getCrossSigningStatus())}, ` +
                `backup key stored in ${JSON.stringify(await bob.secretStorage.isStored("m.megolm_backup.v1"))}`,
        });
        // The sdk enables the new backup once it has checked that the
        // server's copy of it is signed by Bob.
        const version = await waitFor(bob, "an active key backup", () => crypto.getActiveSessionBackupVersion(), {
            describe: async () => {
                const info = await crypto.getKeyBackupInfo();
                return `server backup ${JSON.stringify(info)}, trust ${JSON.stringify(info && (await crypto.isKeyBackupTrusted(info)))}`;
            },
        });
        log(`bob backs up to version ${version}`);

        const roomId = await createEncryptedRoom(alice, [bob.getUserId()]);
        await joinWhenInvited(bob, roomId);
        await waitForMembership(alice, roomId, bob.getUserId(), "join");
        const secret = `backed up ${localpart("secret")}`;
        const { event_id: eventId } = await alice.sendTextMessage(roomId, secret);
        await waitForDecrypted(bob, roomId, eventId, secret);
        log(`bob decrypted ${eventId}; waiting for his client to back up its key`);

        // The session reaches the server's backup (its count, spec
        // "GET /room_keys/version").
        await waitFor(
            bob,
            "the room key in the server-side backup",
            async () => {
                const info = await bob.http.authedRequest("GET", "/room_keys/version");
                return info.version === version && info.count >= 1;
            },
        );

        log("the key is in the server-side backup");

        // Bob's new device: the user types the recovery key.
        const keyId = await bob.secretStorage.getDefaultKeyId();
        assert(keyId, "bob has no default secret storage key");
        const secrets = new Map([[keyId, recovery.privateKey]]);
        bob2 = await login(hs, bob.getUserId(), { secrets });
        assert(bob2.getDeviceId() !== bob.getDeviceId(), "the new login reused the device");
        const crypto2 = bob2.getCrypto();
        await crypto2.loadSessionBackupPrivateKeyFromSecretStorage();
        await crypto2.checkKeyBackupAndEnable();
        const restored = await crypto2.restoreKeyBackup();
        log(`bob's new device restored ${restored.imported}/${restored.total} keys`);
        assert(restored.imported >= 1, `restored ${JSON.stringify(restored)}`);
        await waitFor(bob2, `${eventId} in the new device's timeline`, () => findEvent(bob2, roomId, eventId));
        await waitForDecrypted(bob2, roomId, eventId, secret);
    } finally {
        stopAll(alice, bob, bob2);
    }
}

// encryptedAttachment: Alice encrypts a file (AES-CTR, spec "Sending
// encrypted attachments"), uploads the ciphertext and sends m.file in an
// encrypted room; Bob decrypts the event, downloads the ciphertext through
// the authenticated media API, checks its hash and decrypts the file.
async function encryptedAttachment(hsA = serverURL(1), hsB = serverURL(1)) {
    const { alice, bob, roomId } = await encryptedExchange(hsA, hsB);
    try {
        const plaintext = Buffer.concat([Buffer.from("PDF-ish "), randomBytes(70000)]);
        const { data, info } = await encryptAttachment(plaintext);
        const { content_uri: mxc } = await alice.uploadContent(data, { type: "application/octet-stream", includeFilename: false });
        assert(mxc?.startsWith("mxc://"), `upload returned ${mxc}`);
        const body = "secret.pdf";
        const { event_id: eventId } = await alice.sendMessage(roomId, {
            msgtype: "m.file",
            body,
            info: { mimetype: "application/pdf", size: plaintext.length },
            file: { ...info, url: mxc },
        });
        const ev = await waitForDecrypted(bob, roomId, eventId, body);
        const file = ev.getContent().file;
        assert(file?.url === mxc, `bob sees file ${JSON.stringify(file)}`);
        await assertCiphertextOnly(bob, roomId, eventId, mxc);

        // Download as Bob (authenticated media, spec v1.11+).
        const [server, mediaId] = mxc.slice("mxc://".length).split("/");
        const url = `${bob.baseUrl}/_matrix/client/v1/media/download/${encodeURIComponent(server)}/${encodeURIComponent(mediaId)}`;
        const res = await fetch(url, { headers: { Authorization: `Bearer ${bob.getAccessToken()}` } });
        if (!res.ok) fail(`download ${url}: ${res.status} ${await res.text()}`);
        const ciphertext = Buffer.from(await res.arrayBuffer());
        assert(ciphertext.length === data.length, `downloaded ${ciphertext.length} bytes, uploaded ${data.length}`);
        assert(!ciphertext.includes(Buffer.from("PDF-ish ")), "the server served plaintext");
        assert(sha256Base64(ciphertext) === file.hashes.sha256, "the downloaded ciphertext's sha256 differs from the event's");
        const decrypted = await decryptAttachment(ciphertext, file);
        assert(Buffer.compare(decrypted, plaintext) === 0, "the decrypted attachment differs from the original");
    } finally {
        stopAll(alice, bob);
    }
}

async function federatedEncryptedAttachment() {
    await encryptedAttachment(serverURL(1), serverURL(2));
}

// newDevice: after the exchange, Bob logs in on a second device. Alice's
// client must learn of it through the device list changes the server
// reports in her /sync (across servers: an m.device_list_update EDU), so
// that her next message is encrypted for the new device too.
async function newDevice(hsA, hsB) {
    const { alice, bob, bobName, roomId } = await encryptedExchange(hsA, hsB);
    let bob2;
    try {
        bob2 = await login(hsB, bobName);
        const bobId = bob.getUserId();
        await waitFor(alice, `alice's client knowing ${bobId}'s new device ${bob2.getDeviceId()}`, async () => {
            const devices = await alice.getCrypto().getUserDeviceInfo([bobId]);
            return devices.get(bobId)?.has(bob2.getDeviceId());
        });
        await waitFor(bob2, `${roomId} in the new device's sync`, () => bob2.getRoom(roomId)?.getMyMembership() === "join");
        // The new device's initial sync must carry the room's
        // m.room.encryption state, or its client would send in the clear.
        await waitFor(bob2, `encryption enabled in ${roomId}`, () => bob2.getCrypto().isEncryptionEnabledInRoom(roomId), {
            describe: () => `state of the room in its sync: ${JSON.stringify(
                bob2.getRoom(roomId)?.currentState.events ? [...bob2.getRoom(roomId).currentState.events.keys()] : null)}`,
        });
        const body = `for both your devices ${localpart("m")}`;
        const { event_id: eventId } = await alice.sendTextMessage(roomId, body);
        log(`alice sent ${eventId}`);
        await waitForDecrypted(bob2, roomId, eventId, body);
        await waitForDecrypted(bob, roomId, eventId, body);
        log(`both of bob's devices decrypted ${eventId}`);
        // And the new device's own message reaches Alice.
        const reply = `from my new device ${localpart("m")}`;
        const { event_id: replyId } = await bob2.sendTextMessage(roomId, reply);
        log(`bob's new device sent ${replyId}`);
        await waitForDecrypted(alice, roomId, replyId, reply);
    } finally {
        stopAll(alice, bob, bob2);
    }
}

// undecryptableControl checks that the harness does see a decryption
// failure: a message Alice sent before Bob was in the room was never
// shared with him and must stay undecryptable on his client, while the
// next one decrypts.
async function undecryptableControl() {
    const hs = serverURL(1);
    const { alice, bob } = await pair(hs, hs);
    try {
        const roomId = await createEncryptedRoom(alice, []);
        const early = `before bob ${localpart("m")}`;
        const { event_id: earlyId } = await alice.sendTextMessage(roomId, early);
        await alice.invite(roomId, bob.getUserId());
        await joinWhenInvited(bob, roomId);
        // The sync that brings Bob's join holds only what happened since
        // his previous sync, so he reads the earlier event by id, as a
        // client does for a reply's quoted event (GET /rooms/{roomId}/event).
        const ev = bob.getEventMapper()(await bob.fetchRoomEvent(roomId, earlyId));
        assert(ev.getWireType() === "m.room.encrypted", `${earlyId} is ${ev.getWireType()} on the server`);
        await waitFor(bob, `${earlyId} failing to decrypt`, () => !ev.isBeingDecrypted() && ev.isDecryptionFailure(), {
            describe: () => `${ev.getType()} ${JSON.stringify(ev.getContent())}`,
        });
        log(`bob cannot decrypt ${earlyId}: ${ev.decryptionFailureReason}`);
        assert(!JSON.stringify(ev.getContent()).includes(early), "bob's client shows the plaintext it had no key for");
        await waitForMembership(alice, roomId, bob.getUserId(), "join");
        const later = `after bob joined ${localpart("m")}`;
        const { event_id: laterId } = await alice.sendTextMessage(roomId, later);
        await waitForDecrypted(bob, roomId, laterId, later);
        assert(ev.isDecryptionFailure(), `${earlyId} became decryptable`);
    } finally {
        stopAll(alice, bob);
    }
}

export const scenarios = {
    "register-login": registerAndLogin,
    "plain-room": () => plainRoom(),
    "encrypted-room": encryptedRoom,
    "key-backup": keyBackup,
    "encrypted-attachment": () => encryptedAttachment(),
    "undecryptable-control": undecryptableControl,
    "new-device": () => newDevice(serverURL(1), serverURL(1)),
    "federated-plain-room": federatedPlainRoom,
    "federated-encrypted-room": federatedEncryptedRoom,
    "federated-encrypted-attachment": federatedEncryptedAttachment,
    "federated-new-device": () => newDevice(serverURL(1), serverURL(2)),
};
