/**
 * The SSH gateway: a TCP listener of its own (SSH is encrypted end to end, so Envoy only carries it, with tcp_proxy)
 * that terminates SSH with the gateway's persistent host key and runs each agent connection through the spine.
 */
import ssh2 from 'ssh2';
import { lazyMaskingEngine, type MaskingEngine } from '../masking/index.ts';
import type { DataPathAdapter, RunningListener } from '../streams/index.ts';
import { AgentConnection, type GatewayDeps } from './agent-connection.ts';
import { loadOrCreateHostKey } from './host-key.ts';

export interface SshGatewayOptions {
  host: string;
  /** 0: a free port (tests). */
  port: number;
  /** Where the host key lives; generated there on first start. */
  hostKeyPath: string;
  /** How long a channel request may wait for a quick approval (default 2 minutes; ssh clients wait indefinitely). */
  maxHoldMs?: number;
  /** Upstream connection and handshake timeout (default 10 s). */
  upstreamTimeoutMs?: number;
  /** Bytes of each output stream of an exec kept in its recording (default 64 KiB). */
  captureBytes?: number;
  engine?: () => Promise<MaskingEngine>;
}

export function sshGatewayAdapter(opts: SshGatewayOptions): DataPathAdapter {
  return (spine) => ({
    kind: 'tcp',
    name: 'ssh',
    start: async (): Promise<RunningListener> => {
      const key = loadOrCreateHostKey(opts.hostKeyPath);
      spine.logger.info(
        { path: opts.hostKeyPath, fingerprint: key.fingerprint, created: key.created },
        key.created ? 'ssh gateway host key generated' : 'ssh gateway host key loaded',
      );
      const deps: GatewayDeps = {
        spine,
        engine: opts.engine ?? lazyMaskingEngine(),
        maxHoldMs: opts.maxHoldMs ?? 120_000,
        upstream: { readyTimeoutMs: opts.upstreamTimeoutMs ?? 10_000 },
        captureBytes: opts.captureBytes ?? 64 * 1024,
        logger: spine.logger,
      };
      const open = new Set<{ end(): void }>();
      const server = new ssh2.Server({ hostKeys: [key.privateKey], ident: 'Portcullis' }, (conn, info) => {
        // SSH is request/response at channel setup and close: without TCP_NODELAY each small packet can wait for the
        // peer's delayed ACK (tens to hundreds of milliseconds per exec).
        // (ssh2's server-side connection has setNoDelay; its type declarations omit it.)
        (conn as typeof conn & { setNoDelay(on: boolean): void }).setNoDelay(true);
        open.add(conn);
        conn.once('close', () => open.delete(conn));
        new AgentConnection(deps, conn, `${info.ip}:${info.port}`).attach();
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port, opts.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      server.on('error', (err: Error) => spine.logger.error({ err: err.message }, 'ssh gateway listener error'));
      const address = server.address() as { address: string; port: number };
      spine.logger.info({ address: `${address.address}:${address.port}` }, 'ssh gateway listening');
      return {
        address: `${address.address}:${address.port}`,
        details: { hostKey: key.publicKey, fingerprint: key.fingerprint },
        close: () =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            for (const c of open) c.end();
          }),
      };
    },
  });
}
