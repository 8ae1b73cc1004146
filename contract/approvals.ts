/**
 * Signed commands: what a person signs (Ed25519) so that identity does not rest
 * on a command-line flag: a gate decision, the start of a run, a cancel, a
 * resolution. The CLI signs with the person's private key; the workflow
 * verifies with the public key from the worker's trusted config (fixed in the
 * run's history at its start), deterministically (pure-JS Ed25519, no I/O).
 * Each kind has its own first line, so a signature of one kind is never
 * accepted as another.
 */
import { ed25519 } from '@noble/curves/ed25519';
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';
import { canonicalJson } from './evidence';

export const APPROVAL_FORMAT = 'lifeboat-approval/1';

export interface SignedFields {
  workflowId: string;
  gate: string;
  /** The gate's current opening: a signature for an earlier opening is worthless. */
  nonce: string;
  decision: 'approve' | 'reject';
  approver: string;
  comment: string;
}

/** The exact bytes signed: one field per line, in this order. */
export function approvalMessage(f: SignedFields): Uint8Array {
  return lines([APPROVAL_FORMAT, f.workflowId, f.gate, f.nonce, f.decision, f.approver, f.comment]);
}

export const START_FORMAT = 'lifeboat-start/1';
export const CANCEL_FORMAT = 'lifeboat-cancel/1';
export const RESOLVE_FORMAT = 'lifeboat-resolve/1';
export const ACK_FORMAT = 'lifeboat-ack/1';

/** An acknowledgement of a run's last pages, bound to its pager. */
export interface SignedAck {
  pager: string;
  by: string;
  comment: string;
}

export function ackMessage(f: SignedAck): Uint8Array {
  return lines([ACK_FORMAT, f.pager, f.by, f.comment]);
}

/** A run's start, signed by its initiator: the digest covers the whole input but the signature itself. */
export interface SignedStart {
  workflowId: string;
  workflowType: string;
  initiator: string;
  /** SHA-256 (hex) of the input's canonical JSON with `run.startSignature` left out (startDigest). */
  inputDigest: string;
}

/** A cancel of one execution of a run. */
export interface SignedCancel {
  workflowId: string;
  runId: string;
  by: string;
  reason: string;
}

/** A resolution of one failed undo the run waits on (`attention`: the status's attention id). */
export interface SignedResolve {
  workflowId: string;
  runId: string;
  attention: string;
  action: 'retry' | 'done-by-hand';
  by: string;
  comment: string;
}

export function startMessage(f: SignedStart): Uint8Array {
  return lines([START_FORMAT, f.workflowId, f.workflowType, f.initiator, f.inputDigest]);
}

export function cancelMessage(f: SignedCancel): Uint8Array {
  return lines([CANCEL_FORMAT, f.workflowId, f.runId, f.by, f.reason]);
}

export function resolveMessage(f: SignedResolve): Uint8Array {
  return lines([RESOLVE_FORMAT, f.workflowId, f.runId, f.attention, f.action, f.by, f.comment]);
}

/** The digest a start signature covers: the input as the workflow receives it (JSON), without the signature. */
export function startDigest(input: unknown): string {
  const copy = JSON.parse(JSON.stringify(input ?? null)) as { run?: Record<string, unknown> } | null;
  if (copy && typeof copy === 'object' && copy.run && typeof copy.run === 'object') delete copy.run.startSignature;
  return bytesToHex(sha256(utf8ToBytes(canonicalJson(copy))));
}

function lines(fields: readonly string[]): Uint8Array {
  return new TextEncoder().encode(fields.join('\n'));
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Decodes base64 by hand: the workflow sandbox has neither atob nor Buffer. */
function fromBase64(text: string): Uint8Array | undefined {
  if (!BASE64.test(text) || text.length % 4 !== 0) return undefined;
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const bytes = new Uint8Array((text.length / 4) * 3 - padding);
  let out = 0;
  for (let i = 0; i < text.length; i += 4) {
    const n = [0, 1, 2, 3].reduce((acc, j) => (acc << 6) | Math.max(0, ALPHABET.indexOf(text.charAt(i + j))), 0);
    for (const shift of [16, 8, 0]) if (out < bytes.length) bytes[out++] = (n >> shift) & 0xff;
  }
  return bytes;
}

/** A raw 32-byte Ed25519 public key in base64 (what `lifeboat keys generate` prints). */
export function isPublicKey(text: string): boolean {
  return fromBase64(text)?.length === 32;
}

/** Whether `signature` (base64, 64 bytes) is `publicKey`'s signature of these fields. */
export function verifyApproval(fields: SignedFields, signature: string, publicKey: string): boolean {
  return verifySigned(approvalMessage(fields), signature, publicKey);
}

/** Whether `signature` (base64, 64 bytes) is `publicKey`'s signature of `message` (one of the messages above). */
export function verifySigned(message: Uint8Array, signature: string, publicKey: string): boolean {
  const sig = fromBase64(signature);
  const key = fromBase64(publicKey);
  if (sig?.length !== 64 || key?.length !== 32) return false;
  try {
    return ed25519.verify(sig, message, key);
  } catch {
    return false;
  }
}
