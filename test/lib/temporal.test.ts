/**
 * Connecting to a real Temporal (self-hosted with mTLS, or Temporal Cloud with an
 * API key) goes through @temporalio/envconfig. No TLS server runs here, so this
 * tests the mapping from temporal.toml profiles and TEMPORAL_* variables to the
 * connection options every client and worker uses.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/load';
import { temporalTarget } from '../../lib/temporal';

const loaded = loadConfig(path.join(__dirname, '..', '..', 'runbooks', 'lab.yaml'));
const dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-envconfig-'));
const file = (name: string, text: string) => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};
/** No temporal.toml at all (an empty file trips envconfig 1.24.0). */
const emptyToml = path.join(dir, 'absent.toml');

describe('Temporal connection settings', () => {
  it('with nothing set, the config file decides: the lab, in plain text', () => {
    const target = temporalTarget(loaded, { TEMPORAL_CONFIG_FILE: emptyToml });
    expect(target.address).toBe('127.0.0.1:7233');
    expect(target.namespace).toBe('default');
    expect(target.connection.tls).toBeFalsy();
    expect(target.connection.apiKey).toBeUndefined();
  });

  it('Temporal Cloud from the environment: address, namespace and API key, with TLS on', () => {
    const target = temporalTarget(loaded, {
      TEMPORAL_CONFIG_FILE: emptyToml,
      TEMPORAL_ADDRESS: 'lifeboat.a1b2c.tmprl.cloud:7233',
      TEMPORAL_NAMESPACE: 'lifeboat.a1b2c',
      TEMPORAL_API_KEY: 'secret-api-key',
    });
    expect(target.address).toBe('lifeboat.a1b2c.tmprl.cloud:7233');
    expect(target.namespace).toBe('lifeboat.a1b2c');
    expect(target.connection.apiKey).toBe('secret-api-key');
    expect(target.connection.tls).toBeTruthy();
  });

  it('a self-hosted cluster with mTLS from a temporal.toml profile chosen by TEMPORAL_PROFILE', () => {
    const cert = file('client.pem', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const key = file('client.key', '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n');
    const ca = file('ca.pem', '-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n');
    const toml = file('temporal.toml', [
      '[profile.prod]',
      'address = "temporal.prod.internal:7233"',
      'namespace = "dr"',
      '[profile.prod.tls]',
      `client_cert_path = "${cert}"`,
      `client_key_path = "${key}"`,
      `server_ca_cert_path = "${ca}"`,
      'server_name = "temporal.prod.internal"',
    ].join('\n'));
    const target = temporalTarget(loaded, { TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'prod' });
    expect(target.address).toBe('temporal.prod.internal:7233');
    expect(target.namespace).toBe('dr');
    const tls = target.connection.tls;
    if (typeof tls !== 'object' || tls === null) throw new Error('expected a TLS config');
    expect(tls.serverNameOverride).toBe('temporal.prod.internal');
    expect(Buffer.from(tls.clientCertPair?.crt ?? new Uint8Array()).toString()).toContain('BEGIN CERTIFICATE');
    expect(Buffer.from(tls.serverRootCACertificate ?? new Uint8Array()).toString()).toContain('MIIC');
  });

  it('a profile that does not exist is an error that says where the settings come from', () => {
    expect(() => temporalTarget(loaded, { TEMPORAL_CONFIG_FILE: emptyToml, TEMPORAL_PROFILE: 'nope' })).toThrow(/^Temporal connection settings \(temporal\.toml \/ TEMPORAL_\*\): /);
  });
});
