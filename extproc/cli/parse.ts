/** Argument parsers for commander options: a bad value is a usage error naming the flag and the value. */
import { InvalidArgumentError } from 'commander';

export function positiveInt(flag: string): (value: string) => number {
  return (value) => {
    if (!/^[1-9][0-9]{0,8}$/.test(value))
      throw new InvalidArgumentError(`${flag} must be a positive integer, got "${value}"`);
    return Number(value);
  };
}
