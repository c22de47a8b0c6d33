/**
 * The write side of the store: one Lua script call per batch. Compared with a pipeline of single commands it costs
 * the client one command instead of thousands (ioredis spends microseconds and several allocations per command and
 * per argument), and Redis applies the batch atomically: the AOF holds all of it or none.
 *
 * Arguments: ARGV[1] packs the events as lines `key \n id \n json \n …` (JSON text never holds a raw newline, and
 * session ids are refused if they do), the bytes written when each event was chained (event-slab.ts); then any number
 * of plain commands, each as (arg count, command, args…).
 * An XADD refused because its entry id exists (a retried batch) does not stop the batch; the script returns the
 * 1-based positions and errors of refused XADDs.
 */
import { createHash } from 'node:crypto';
import type { RedisClient } from '../common/redis-client.ts';
import { packEvents, type SealedEvent } from './event-slab.ts';

const SCRIPT = `
local blob = ARGV[1]
local len = #blob
local refused = {}
local pos = 1
local k = 0
while pos <= len do
  local e1 = string.find(blob, '\\n', pos, true)
  local e2 = string.find(blob, '\\n', e1 + 1, true)
  local e3 = string.find(blob, '\\n', e2 + 1, true) or (len + 1)
  k = k + 1
  local r = redis.pcall('XADD', string.sub(blob, pos, e1 - 1), string.sub(blob, e1 + 1, e2 - 1), 'e', string.sub(blob, e2 + 1, e3 - 1))
  if type(r) == 'table' and r.err then
    refused[#refused + 1] = k
    refused[#refused + 1] = r.err
  end
  pos = e3 + 1
end
local i = 2
while i <= #ARGV do
  local c = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + c))
  i = i + c + 1
end
return refused
`;

const SCRIPT_SHA = createHash('sha1').update(SCRIPT).digest('hex');

/** EVALSHA, falling back to EVAL once when Redis does not have the script cached (first use, or after a restart). */
async function runScript(redis: RedisClient, args: Array<string | Buffer>): Promise<unknown> {
  try {
    return await redis.evalsha(SCRIPT_SHA, 0, args);
  } catch (err) {
    if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
    return redis.eval(SCRIPT, 0, args);
  }
}

export class AppendBatch {
  private readonly commands: string[] = [];

  /** XADDs of these sealed events, in this order. */
  constructor(private readonly events: ReadonlyArray<Pick<SealedEvent, 'slab' | 'start' | 'end'>>) {}

  command(...args: string[]): void {
    this.commands.push(String(args.length), ...args);
  }

  /** Runs the batch; returns the refused XADDs as (0-based event position, error message). */
  async run(redis: RedisClient): Promise<Array<{ index: number; error: string }>> {
    // ioredis flattens array arguments; one array avoids spreading thousands of arguments.
    const args = ([packEvents(this.events)] as Array<string | Buffer>).concat(this.commands);
    const res = (await runScript(redis, args)) as Array<number | string>;
    const out: Array<{ index: number; error: string }> = [];
    for (let i = 0; i < res.length; i += 2) out.push({ index: Number(res[i]) - 1, error: String(res[i + 1]) });
    return out;
  }
}
