// Helpers shared by the scenarios: accounts, clients with the Rust crypto,
// and waiting on what a client sees with a deadline (never a fixed sleep).
import { randomBytes } from "node:crypto";
import * as sdk from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";

// The sdk logs every request and crypto step; PARLEY_INTEROP_DEBUG=1 shows
// them, otherwise only errors are kept so a failing scenario's output says why.
// The Rust crypto traces at debug level through console.debug, and the sdk
// warns about each push rule the server did not supply (see fetchFn).
// Only errors are kept on the console; the scenarios' own lines go to
// stdout through log().
if (!process.env.PARLEY_INTEROP_DEBUG) {
    logger.setLevel("error");
    console.debug = console.info = console.log = console.warn = () => {};
    // The sdk's call manager reports the state of rooms it learns of
    // through an invite as an error; nothing is wrong.
    const error = console.error;
    console.error = (...args) => {
        if (typeof args[0] === "string" && args[0].startsWith("MatrixRTCSessionManager")) return;
        error(...args);
    };
}

export const PASSWORD = "correct horse battery staple";

// A deadline long enough for a slow, shared CI machine; every wait that
// reaches it fails the scenario with what it waited for.
export const DEFAULT_TIMEOUT_MS = Number(process.env.PARLEY_INTEROP_TIMEOUT_MS || 60000);

export function log(...args) {
    process.stdout.write(`${new Date().toISOString().slice(11, 23)} ${args.join(" ")}\n`);
}

export function fail(message) {
    throw new Error(message);
}

export function assert(cond, message) {
    if (!cond) fail(message);
}

// A fresh localpart per run: scenarios share servers.
export function localpart(prefix) {
    return `${prefix}-${randomBytes(4).toString("hex")}`;
}

// The server URLs the Go test passes in.
export function serverURL(n) {
    const url = process.env[`PARLEY_HS${n}_URL`];
    if (!url) fail(`PARLEY_HS${n}_URL is not set (run through interop_test.go)`);
    return url;
}

// fetchFn is the clients' fetch. Parley does not serve push rules yet
// (GET /pushrules/, spec "Push Notifications"), and the sdk will not finish
// its first sync without them: while the server answers 404
// M_UNRECOGNIZED, the client gets an empty rule set instead. Nothing else
// is changed; once the server serves push rules, they are used as they are.
export const missingEndpoints = new Set();
async function fetchFn(input, init) {
    const res = await fetch(input, init);
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (res.status === 404 && (init?.method ?? "GET") === "GET" && /\/_matrix\/client\/v3\/pushrules\/?$/.test(url.pathname)) {
        const body = await res.clone().json().catch(() => ({}));
        if (body.errcode === "M_UNRECOGNIZED") {
            missingEndpoints.add("GET /pushrules/");
            return new Response(JSON.stringify({ global: {} }), { status: 200, headers: { "Content-Type": "application/json" } });
        }
    }
    return res;
}

// register creates an account with open registration, completing the
// m.login.dummy stage of user-interactive auth (spec: Client-Server API,
// "POST /register").
export async function register(baseUrl, name) {
    const client = sdk.createClient({ baseUrl, fetchFn });
    const body = { username: name, password: PASSWORD, inhibit_login: true };
    try {
        await client.registerRequest({ ...body, auth: { type: "m.login.dummy" } });
    } catch (err) {
        const session = err?.data?.session;
        if (err?.httpStatus !== 401 || !session) throw err;
        await client.registerRequest({ ...body, auth: { type: "m.login.dummy", session } });
    }
    client.stopClient();
}

// login logs in with the password and returns a client for the new device,
// crypto ready and syncing. secrets holds the secret storage keys the user
// "types in" when the crypto asks (keyId -> private key).
export async function login(baseUrl, name, { secrets = new Map(), crypto = true } = {}) {
    const anon = sdk.createClient({ baseUrl, fetchFn });
    const res = await anon.loginRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: name },
        password: PASSWORD,
        initial_device_display_name: `interop ${name}`,
    });
    anon.stopClient();
    assert(res.access_token && res.device_id && res.user_id, `login ${name}: ${JSON.stringify(res)}`);
    const client = sdk.createClient({
        baseUrl,
        fetchFn,
        userId: res.user_id,
        deviceId: res.device_id,
        accessToken: res.access_token,
        cryptoCallbacks: {
            getSecretStorageKey: async ({ keys }) => {
                for (const keyId of Object.keys(keys)) {
                    if (secrets.has(keyId)) return [keyId, secrets.get(keyId)];
                }
                return null;
            },
            cacheSecretStorageKey: (keyId, _info, key) => secrets.set(keyId, key),
        },
    });
    client.secrets = secrets;
    if (crypto) await client.initRustCrypto({ useIndexedDB: false });
    await startSync(client);
    return client;
}

// startSync starts the client and waits for its first sync.
export async function startSync(client) {
    const ready = new Promise((resolve, reject) => {
        const onSync = (state, _prev, data) => {
            if (state === "PREPARED" || state === "SYNCING") {
                client.off(sdk.ClientEvent.Sync, onSync);
                resolve();
            } else if (state === "ERROR") {
                client.off(sdk.ClientEvent.Sync, onSync);
                reject(new Error(`first sync of ${client.getUserId()} failed: ${data?.error}`));
            }
        };
        client.on(sdk.ClientEvent.Sync, onSync);
    });
    await client.startClient({ initialSyncLimit: 20 });
    await withDeadline(ready, DEFAULT_TIMEOUT_MS, `first sync of ${client.getUserId()}`);
}

export async function withDeadline(promise, ms, what) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    });
    try {
        return await Promise.race([promise, timeout]);
    } finally {
        clearTimeout(timer);
    }
}

// waitFor re-evaluates check whenever the client reports something
// (a sync, a timeline event, a decryption, a membership) and, as a
// backstop, every 250 ms, until it returns a truthy value or the deadline
// passes; describe() then explains what was last seen.
export async function waitFor(client, what, check, { timeoutMs = DEFAULT_TIMEOUT_MS, describe } = {}) {
    const events = [
        sdk.ClientEvent.Sync,
        sdk.RoomEvent.Timeline,
        sdk.RoomEvent.MyMembership,
        sdk.RoomMemberEvent.Membership,
        sdk.MatrixEventEvent.Decrypted,
        sdk.ClientEvent.Room,
        sdk.ClientEvent.ToDeviceEvent,
    ];
    let wake = () => {};
    const onAny = () => wake();
    for (const e of events) client.on(e, onAny);
    const deadline = Date.now() + timeoutMs;
    try {
        for (;;) {
            const v = await check();
            if (v) return v;
            const left = deadline - Date.now();
            if (left <= 0) {
                const detail = describe ? `: ${await describe()}` : "";
                fail(`${client.getUserId()} (${client.getDeviceId()}): timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
            }
            await new Promise((resolve) => {
                const timer = setTimeout(resolve, Math.min(250, left));
                wake = () => {
                    clearTimeout(timer);
                    resolve();
                };
            });
            wake = () => {};
        }
    } finally {
        for (const e of events) client.off(e, onAny);
    }
}

// waitForMembership waits until client sees user in roomId with membership.
export function waitForMembership(client, roomId, userId, membership) {
    return waitFor(client, `${userId} ${membership} in ${roomId}`, () => {
        return client.getRoom(roomId)?.getMember(userId)?.membership === membership;
    });
}

// findEvent is the event with eventId in the live timeline of roomId.
export function findEvent(client, roomId, eventId) {
    const room = client.getRoom(roomId);
    if (!room) return undefined;
    return room.getLiveTimeline().getEvents().find((ev) => ev.getId() === eventId);
}

// waitForDecrypted waits until client has eventId decrypted into an
// m.room.message whose body is body. A decryption failure that the key
// arriving later does not cure fails the scenario with its reason.
export async function waitForDecrypted(client, roomId, eventId, body, opts = {}) {
    const ev = await waitFor(
        client,
        `${eventId} decrypted to ${JSON.stringify(body)}`,
        () => {
            const ev = findEvent(client, roomId, eventId);
            if (!ev || ev.isBeingDecrypted() || ev.isDecryptionFailure()) return undefined;
            return ev.getType() === "m.room.message" ? ev : undefined;
        },
        {
            ...opts,
            describe: () => {
                const ev = findEvent(client, roomId, eventId);
                if (!ev) return "the event is not in the timeline";
                if (ev.isDecryptionFailure()) return `decryption failed: ${ev.decryptionFailureReason} (${JSON.stringify(ev.getContent())})`;
                return `event is ${ev.getType()} ${JSON.stringify(ev.getContent())}`;
            },
        },
    );
    assert(ev.isEncrypted(), `${eventId} was not sent encrypted`);
    assert(ev.getWireType() === "m.room.encrypted", `${eventId} wire type ${ev.getWireType()}`);
    const got = ev.getContent().body;
    assert(got === body, `${eventId} decrypted to ${JSON.stringify(got)}, want ${JSON.stringify(body)}`);
    return ev;
}

// waitForPlain waits until client has eventId as a plain m.room.message.
export async function waitForPlain(client, roomId, eventId, body) {
    const ev = await waitFor(client, `${eventId} with body ${JSON.stringify(body)}`, () => findEvent(client, roomId, eventId));
    assert(!ev.isEncrypted(), `${eventId} is encrypted in an unencrypted room`);
    assert(ev.getType() === "m.room.message", `${eventId} has type ${ev.getType()}`);
    assert(ev.getContent().body === body, `${eventId} body ${JSON.stringify(ev.getContent().body)}, want ${JSON.stringify(body)}`);
    return ev;
}

// rawEvent fetches an event as the server serves it, to check that the
// server only ever holds ciphertext.
export async function rawEvent(client, roomId, eventId) {
    const path = `/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(eventId)}`;
    return client.http.authedRequest(sdk.Method.Get, path);
}

// assertCiphertextOnly checks that the server serves eventId as an
// m.room.encrypted megolm event that does not contain the plaintext.
export async function assertCiphertextOnly(client, roomId, eventId, plaintext) {
    const raw = await rawEvent(client, roomId, eventId);
    assert(raw.type === "m.room.encrypted", `server holds ${eventId} as ${raw.type}`);
    assert(raw.content?.algorithm === "m.megolm.v1.aes-sha2", `server holds ${eventId} with algorithm ${raw.content?.algorithm}`);
    assert(!JSON.stringify(raw).includes(plaintext), `server holds the plaintext of ${eventId}`);
}

// createEncryptedRoom creates a private room with m.room.encryption in its
// initial state, inviting the given users in the same request as clients
// do for a direct chat.
export async function createEncryptedRoom(client, invite) {
    const { room_id: roomId } = await client.createRoom({
        preset: "private_chat",
        invite,
        initial_state: [
            { type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } },
        ],
    });
    await waitFor(client, `encryption enabled in ${roomId}`, () => client.getCrypto().isEncryptionEnabledInRoom(roomId));
    return roomId;
}

// joinWhenInvited waits for the invite to roomId and joins.
export async function joinWhenInvited(client, roomId) {
    await waitFor(client, `invite to ${roomId}`, () => client.getRoom(roomId)?.getMyMembership() === "invite");
    await client.joinRoom(roomId);
    await waitForMembership(client, roomId, client.getUserId(), "join");
}

// passwordAuth answers a user-interactive auth request with the password:
// first without auth (the server may not require it), then in the
// session the 401 names.
export function passwordAuth(client) {
    return async (makeRequest) => {
        try {
            return await makeRequest(null);
        } catch (err) {
            if (err?.httpStatus !== 401 || !err?.data?.flows) throw err;
            return makeRequest({
                type: "m.login.password",
                identifier: { type: "m.id.user", user: client.getUserId() },
                password: PASSWORD,
                session: err.data.session,
            });
        }
    };
}

export function stopAll(...clients) {
    for (const c of clients) c?.stopClient();
}

export { sdk };
