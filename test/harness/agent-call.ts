/**
 * One call through an Envoy stand-in with an agent's token, as kubectl sends it: JSON accepted, a body sent as a merge
 * patch. The answer's body is parsed as JSON when it is JSON (a stand-in's local reply is plain text).
 */
import https from 'node:https';

export function agentCall(
  envoy: { url: string; caPem: string },
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${envoy.url}${path}`,
      {
        method,
        ca: envoy.caPem,
        agent: false,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(text === undefined
            ? {}
            : { 'content-type': 'application/merge-patch+json', 'content-length': Buffer.byteLength(text) }),
        },
      },
      (res) => {
        let out = '';
        res
          .setEncoding('utf8')
          .on('data', (c: string) => {
            out += c;
          })
          .on('end', () => {
            let parsed: unknown = out;
            try {
              parsed = JSON.parse(out);
            } catch {
              /* a local reply from the stand-in is plain text */
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}
