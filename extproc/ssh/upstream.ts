/**
 * The gateway's own SSH connection to a target: the vault's credential (a private key or a password, never the
 * agent's), and the target's host key checked against the one pinned in its registration — a target without a pinned
 * key, or a host presenting another key, is never connected to (no trust on first use). No agent forwarding, no X11.
 */
import ssh2, { type Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import type { Session, UpstreamSecret } from '../spine/index.ts';
import { fingerprintOf, publicKeyBlob } from './host-key.ts';

/** Why the gateway could not open the upstream connection; the message is safe to show the agent (no secret). */
export class UpstreamError extends Error {
  override name = 'UpstreamError';
}

export interface UpstreamOptions {
  /** Connection and handshake timeout (ms). */
  readyTimeoutMs: number;
}

function upstreamAddress(address: string): { host: string; port: number } {
  const m = /^(?:ssh:\/\/)?(\[[^\]]+\]|[^:/]+)(?::(\d{1,5}))?\/?$/.exec(address.trim());
  if (!m) throw new UpstreamError(`target address ${JSON.stringify(address)} is not HOST[:PORT]`);
  const port = m[2] ? Number(m[2]) : 22;
  if (port < 1 || port > 65535) throw new UpstreamError(`target address ${JSON.stringify(address)} has a bad port`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

/** Connects to the session's target; resolves once authenticated. */
export function connectUpstream(session: Session, secret: UpstreamSecret, opts: UpstreamOptions): Promise<Client> {
  const target = session.target;
  const pinned = target.hostKey ? publicKeyBlob(target.hostKey) : null;
  if (!pinned) {
    return Promise.reject(
      new UpstreamError(`target ${target.name} has no valid pinned host key; the gateway does not trust on first use`),
    );
  }
  const { host, port } = upstreamAddress(target.address);
  const config: ConnectConfig = {
    host,
    port,
    readyTimeout: opts.readyTimeoutMs,
    agentForward: false,
    tryKeyboard: false,
    keepaliveInterval: 15_000,
    hostVerifier: (key: Buffer) => key.equals(pinned),
  };
  switch (secret.kind) {
    case 'ssh-key':
      config.username = secret.user;
      config.privateKey = secret.privateKey.reveal();
      break;
    case 'password':
      config.username = secret.user;
      config.password = secret.password.reveal();
      break;
    case 'bearer-token':
      return Promise.reject(new UpstreamError(`target ${target.name} has a bearer-token credential, not an SSH one`));
    default: {
      const never: never = secret;
      throw new Error(`unknown credential ${JSON.stringify(never)}`);
    }
  }
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let presented: Buffer | null = null;
    const verify = config.hostVerifier as (key: Buffer) => boolean;
    config.hostVerifier = (key: Buffer) => {
      presented = key;
      return verify(key);
    };
    client.once('ready', () => {
      // Later errors (the target went away) end the connection; its channels close, and the next action reconnects.
      client.on('error', () => client.end());
      resolve(client);
    });
    client.once('error', (err: Error & { level?: string }) => {
      client.end();
      if (presented && !presented.equals(pinned)) {
        reject(
          new UpstreamError(
            `target ${target.name} presented host key ${fingerprintOf(presented)}, not the pinned ${fingerprintOf(pinned)}; refusing to connect`,
          ),
        );
      } else if (err.level === 'client-authentication') {
        reject(new UpstreamError(`target ${target.name} refused the gateway's credential`));
      } else {
        reject(new UpstreamError(`cannot reach target ${target.name}: ${err.message}`));
      }
    });
    client.connect(config);
    client.setNoDelay(true);
  });
}

/** Runs `fn(cb)` (an ssh2 Client method taking a callback) as a promise of the channel. */
export function openChannel(
  fn: (cb: (err: Error | undefined, ch: ClientChannel) => void) => void,
): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    fn((err, ch) => (err ? reject(new UpstreamError(`the target refused the channel: ${err.message}`)) : resolve(ch)));
  });
}
