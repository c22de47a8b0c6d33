/** Structured JSON logs (pino). Fields that may carry credentials are redacted at the logger, as a last line of defence. */
import { pino, type Logger, type DestinationStream } from 'pino';

export const REDACTED_LOG_PATHS = [
  'authorization',
  '*.authorization',
  'headers.authorization',
  'token',
  '*.token',
  'password',
  '*.password',
  'secret',
  '*.secret',
  'req.headers.authorization',
  'req.headers.cookie',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    { level, base: { service: 'portcullis' }, redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' } },
    destination,
  );
}
