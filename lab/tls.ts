/**
 * The lab's own certificate authority and one server certificate for
 * 127.0.0.1/localhost, made with the openssl CLI (node:crypto can read X.509
 * but not issue it). pgBackRest speaks S3 over TLS only, so the lab's S3
 * server is served with this certificate and clients trust the CA file
 * explicitly; nothing turns verification off.
 */
import { existsSync, mkdirSync, writeFileSync, readFileSync, chmodSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import path from 'node:path';
import { run } from '../lib/processes';

export interface LabCertificates {
  /** The lab CA's certificate (PEM): what clients trust. */
  caFile: string;
  /** The server certificate (PEM), issued by the lab CA for 127.0.0.1 and localhost. */
  certFile: string;
  /** The server certificate's private key (PEM, mode 0600). */
  keyFile: string;
}

const CA_DAYS = 3650;
const SERVER_DAYS = 825;
/** A certificate closer than this to its end is made again. */
const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

const SERVER_EXTENSIONS = `basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
`;

function openssl(args: readonly string[]): Promise<string> {
  return run('openssl', args).catch((err: unknown) => {
    throw new Error(`openssl failed making the lab's TLS certificates (set-up installs openssl from Debian): ${(err as Error).message}`, { cause: err });
  });
}

/** An empty file of mode 0600 for openssl to write a key into: it keeps the mode, so the key is never readable by others. */
function privateFile(file: string): void {
  writeFileSync(file, '', { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** Whether `certFile` exists, was issued by `caFile` and is valid for a while yet. */
function stillGood(certFile: string, caFile: string): boolean {
  if (!existsSync(certFile) || !existsSync(caFile)) return false;
  try {
    const cert = new X509Certificate(readFileSync(certFile));
    const ca = new X509Certificate(readFileSync(caFile));
    return cert.checkIssued(ca) && cert.verify(ca.publicKey) && Date.parse(cert.validTo) - Date.now() > RENEW_BEFORE_MS;
  } catch {
    return false;
  }
}

/** The lab's CA and server certificate under `dir`, made once and kept while valid. */
export async function ensureLabCertificates(dir: string): Promise<LabCertificates> {
  // Readable by all: the CA certificate is public, and pgBackRest runs as the cluster owner. The keys are 0600.
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const files = { caFile: path.join(dir, 'ca.crt'), certFile: path.join(dir, 'server.crt'), keyFile: path.join(dir, 'server.key') };
  const caKey = path.join(dir, 'ca.key');
  if (stillGood(files.certFile, files.caFile)) return files;

  if (!stillGood(files.caFile, files.caFile) || !existsSync(caKey)) {
    privateFile(caKey);
    await openssl([
      'req', '-x509', ...EC_KEY, '-keyout', caKey, '-out', files.caFile, '-days', String(CA_DAYS),
      '-subj', '/CN=Lifeboat lab CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
  }
  const csr = path.join(dir, 'server.csr');
  const extFile = path.join(dir, 'server.ext');
  writeFileSync(extFile, SERVER_EXTENSIONS);
  privateFile(files.keyFile);
  await openssl(['req', ...EC_KEY, '-keyout', files.keyFile, '-out', csr, '-subj', '/CN=localhost']);
  await openssl([
    'x509', '-req', '-in', csr, '-CA', files.caFile, '-CAkey', caKey, '-CAcreateserial',
    '-out', files.certFile, '-days', String(SERVER_DAYS), '-extfile', extFile,
  ]);
  return files;
}
