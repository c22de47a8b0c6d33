/** Agents and targets: registered identities and upstreams, stored as JSON documents in Redis. */
import type { RedisClient } from '../common/redis-client.ts';
import type { TargetKind } from '../policy/context.ts';

export interface Agent {
  id: string;
  groups: string[];
  labels: Record<string, string>;
  disabled: boolean;
  /** Principal id of the human this agent acts for; that human can never approve the agent's requests. */
  owner?: string;
  /** SSH public keys the agent may log in to the SSH gateway with, instead of a token, each for the targets listed. */
  sshKeys?: AgentSshKey[];
  createdAt: string;
}

export interface AgentSshKey {
  /** `ssh-ed25519 AAAA… comment`, as in authorized_keys (no options). */
  publicKey: string;
  targets: string[];
}

/** How the gateway authenticates upstream for a Kubernetes target; the agent never sees any of it. */
export type UpstreamCredential =
  | { kind: 'static-token'; tokenRef: string }
  | {
      kind: 'token-request';
      /** Long-lived credential allowed to call TokenRequest for the service account. */
      tokenRef: string;
      namespace: string;
      serviceAccount: string;
      ttlSeconds: number;
      audiences?: string[];
    }
  | {
      kind: 'password';
      /** The role the gateway logs in as; with `roles`, the admin role that creates and drops the agents' roles. */
      user: string;
      passwordRef: string;
      /**
       * Short-lived upstream roles (PostgreSQL): agents are logged in as roles the gateway creates, members of `group`,
       * valid until the agent's newest live token expires; `user` then serves no agent's statement.
       */
      roles?: { group: string };
    }
  | { kind: 'ssh-key'; user: string; privateKeyRef: string };

export interface Target {
  name: string;
  kind: TargetKind;
  /** Upstream address, e.g. https://10.0.0.1:6443 or db.internal:5432. */
  address: string;
  labels: Record<string, string>;
  /** What happens when no rule matches. */
  defaultAction: 'deny' | 'allow';
  credential?: UpstreamCredential;
  /** CA bundle reference for a TLS upstream. */
  caRef?: string;
  /**
   * An SSH target's host key, pinned at registration (`ssh-ed25519 AAAA…`, as in known_hosts or the host's
   * /etc/ssh/ssh_host_*_key.pub): the gateway connects only to a host presenting exactly this key.
   */
  hostKey?: string;
  /** What the data path does when recording is unavailable. */
  recording: 'fail-closed' | 'best-effort';
}

const AGENTS = 'portcullis:agents';
const TARGETS = 'portcullis:targets';

export class Registry {
  constructor(private readonly redis: RedisClient) {}

  async putAgent(agent: Agent): Promise<void> {
    await this.redis.hset(AGENTS, agent.id, JSON.stringify(agent));
  }
  async getAgent(id: string): Promise<Agent | null> {
    const raw = await this.redis.hget(AGENTS, id);
    return raw ? (JSON.parse(raw) as Agent) : null;
  }
  async listAgents(): Promise<Agent[]> {
    return Object.values(await this.redis.hgetall(AGENTS))
      .map((s) => JSON.parse(s) as Agent)
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  async putTarget(target: Target): Promise<void> {
    await this.redis.hset(TARGETS, target.name, JSON.stringify(target));
  }
  async getTarget(name: string): Promise<Target | null> {
    const raw = await this.redis.hget(TARGETS, name);
    return raw ? (JSON.parse(raw) as Target) : null;
  }
  async listTargets(): Promise<Target[]> {
    return Object.values(await this.redis.hgetall(TARGETS))
      .map((s) => JSON.parse(s) as Target)
      .sort((a, b) => a.name.localeCompare(b.name));
  }
  async deleteTarget(name: string): Promise<boolean> {
    return (await this.redis.hdel(TARGETS, name)) === 1;
  }
}
