/** A throwaway self-signed certificate for the stand-in: kubectl sends bearer tokens only over TLS (docs/envoy-behaviour.md B.14). */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SelfSignedCert {
  dir: string;
  certPath: string;
  keyPath: string;
  certPem: string;
  keyPem: string;
}

/** One certificate that is its own CA (CA:TRUE), valid for 127.0.0.1 and localhost, made with openssl. */
export function makeSelfSignedCert(commonName = 'kube-apiserver-standin'): SelfSignedCert {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-kube-tls-'));
  const certPath = join(dir, 'tls.crt');
  const keyPath = join(dir, 'tls.key');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${commonName}`,
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,digitalSignature,keyCertSign',
      '-addext',
      'extendedKeyUsage=serverAuth',
    ],
    { stdio: 'pipe' },
  );
  return { dir, certPath, keyPath, certPem: readFileSync(certPath, 'utf8'), keyPem: readFileSync(keyPath, 'utf8') };
}
