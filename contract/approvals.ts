/**
 * Signed gate decisions: what an approver signs (Ed25519) so that identity does
 * not rest on a command-line flag. The CLI signs with the approver's private
 * key; the workflow verifies with the public key from the run's snapshot of
 * the config, deterministically (pure-JS Ed25519, no I/O), in the `decide`
 * validator and the `approve`/`reject` signal handlers alike.
 */
import { ed25519 } from '@noble/curves/ed25519';

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
  return new TextEncoder().encode([APPROVAL_FORMAT, f.workflowId, f.gate, f.nonce, f.decision, f.approver, f.comment].join('\n'));
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
  const sig = fromBase64(signature);
  const key = fromBase64(publicKey);
  if (sig?.length !== 64 || key?.length !== 32) return false;
  try {
    return ed25519.verify(sig, approvalMessage(fields), key);
  } catch {
    return false;
  }
}
