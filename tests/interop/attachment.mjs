// Encrypted attachments as the spec defines them (Client-Server API,
// "Sending encrypted attachments"): AES-256-CTR with a JWK key, a 128-bit
// IV whose counter half starts at zero, and the SHA-256 of the ciphertext;
// all base64 unpadded (the key base64url, as JWK wants).
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

const unpadded = (buf) => buf.toString("base64").replace(/=+$/, "");

export function sha256Base64(buf) {
    return unpadded(createHash("sha256").update(buf).digest());
}

// encryptAttachment returns the ciphertext and the EncryptedFile fields
// (all but url).
export async function encryptAttachment(plaintext) {
    const key = randomBytes(32);
    const iv = Buffer.concat([randomBytes(8), Buffer.alloc(8)]);
    const cipher = createCipheriv("aes-256-ctr", key, iv);
    const data = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return {
        data,
        info: {
            v: "v2",
            key: { kty: "oct", key_ops: ["encrypt", "decrypt"], alg: "A256CTR", k: key.toString("base64url"), ext: true },
            iv: unpadded(iv),
            hashes: { sha256: sha256Base64(data) },
        },
    };
}

// decryptAttachment checks the ciphertext's hash and decrypts it with the
// EncryptedFile's key and iv.
export async function decryptAttachment(ciphertext, file) {
    if (sha256Base64(ciphertext) !== file.hashes?.sha256) throw new Error("attachment hash mismatch");
    if (file.key?.alg !== "A256CTR") throw new Error(`attachment key alg ${file.key?.alg}`);
    const key = Buffer.from(file.key.k, "base64url");
    const iv = Buffer.from(file.iv, "base64");
    const decipher = createDecipheriv("aes-256-ctr", key, iv);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
}
