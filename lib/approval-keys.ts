/**
 * Approvers' Ed25519 keys on the CLI side: generate a key pair (the private key
 * stays in a file on the approver's machine; the public key goes in the config
 * under people.<name>.publicKey) and sign a gate decision, a start, a cancel or
 * a resolution with it.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { approvalMessage, type SignedFields } from '../contract/approvals';

/** The raw 32-byte public key in base64: the last 32 bytes of its SPKI DER form. */
export function rawPublicKey(key: KeyObject): string {
  const der = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - 32).toString('base64');
}

/** Writes a new private key (PKCS#8 PEM, mode 0600) and returns the public key for the config. */
export function generateApprovalKey(file: string): string {
  const { privateKey } = generateKeyPairSync('ed25519');
  writeFileSync(file, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' });
  return rawPublicKey(privateKey);
}

export function loadApprovalKey(file: string): KeyObject {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the key file ${file}: ${(err as Error).message}`);
  }
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${file} is a ${key.asymmetricKeyType ?? 'unknown'} key, not Ed25519: create one with 'lifeboat keys generate'`);
  return key;
}

/** Base64 Ed25519 signature of the decision, as the workflow verifies it. */
export function signApproval(key: KeyObject, fields: SignedFields): string {
  return signMessage(key, approvalMessage(fields));
}

/** Base64 Ed25519 signature of a signed command's message (a start, a cancel, a resolution: contract/approvals.ts). */
export function signMessage(key: KeyObject, message: Uint8Array): string {
  return sign(null, message, key).toString('base64');
}
