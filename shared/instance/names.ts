import { createHash, createHmac } from "node:crypto";

/** An instance id as clients send it: a DNS label of at most 40 characters. */
export const INSTANCE_ID_PATTERN = /^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/;
/** An API key: 8 to 256 URL-safe characters, as base64 and common token formats use. */
export const API_KEY_PATTERN = /^[A-Za-z0-9._~+/=-]{8,256}$/;

/** Prefix of every ClientPod and Pod name; the rest is a hash, so names never leak keys. */
export const INSTANCE_NAME_PREFIX = "gptme-client-";

// 32 hex digits (128 bits): unique across any realistic number of clients, and short enough
// to be a label value (at most 63 characters), so clients can be selected by label.
const CLIENT_ID_LENGTH = 32;
// 16 hex digits (64 bits) keep names short and collisions out of reach for a fleet.
const NAME_HASH_LENGTH = 16;

export const sha256Hex = (text: string): string => createHash("sha256").update(text).digest("hex");

/** The stable, one-way id of the client behind an API key. */
export function clientIdOf(apiKey: string, secret?: string): string {
  const digest = secret
    ? createHmac("sha256", secret).update(apiKey).digest("hex")
    : sha256Hex(apiKey);
  return digest.slice(0, CLIENT_ID_LENGTH);
}

/**
 * The name of the ClientPod and of its Pod for one (client, instance): the same on every
 * replica at any time, which is what makes creation idempotent.
 */
export function instanceNameOf(clientId: string, instanceId: string): string {
  return INSTANCE_NAME_PREFIX + sha256Hex(`${clientId}/${instanceId}`).slice(0, NAME_HASH_LENGTH);
}

/** The gateway path of every instance: `/api/v1/instances/<name>`. */
export const GATEWAY_PREFIX = "/api/v1/instances/";
