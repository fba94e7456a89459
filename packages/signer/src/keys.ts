import { readFileSync, statSync } from 'node:fs';

import { AppError } from '@steem-bot/config';

import { isWif } from './steem';

/** Which private key an action signs with. */
export type KeyRole = 'posting' | 'active';

/** The keys of the accounts the signer acts for. Never logged, never on the bus. */
export class Keys {
  private constructor(private readonly keys: ReadonlyMap<string, Partial<Record<KeyRole, string>>>) {}

  /**
   * Read SIGNER_KEYS_FILE: JSON `{"<account>": {"posting": "5...", "active": "5..."}}`, refused
   * unless it is a regular file of mode 0600 owned by this user. Errors name the file, the
   * account and the role, never a key.
   */
  static load(file: string): Keys {
    let stat;
    try {
      stat = statSync(file);
    } catch {
      throw new AppError(
        'ERR_CONFIG_INVALID',
        `SIGNER_KEYS_FILE ${file} does not exist (JSON {"<account>": {"posting": "5...", "active": "5..."}}, mode 0600)`,
      );
    }
    const uid = process.getuid?.();
    if (!stat.isFile()) throw new AppError('ERR_CONFIG_INVALID', `SIGNER_KEYS_FILE ${file} is not a regular file`);
    if ((stat.mode & 0o777) !== 0o600)
      throw new AppError(
        'ERR_CONFIG_INVALID',
        `SIGNER_KEYS_FILE ${file} has mode ${(stat.mode & 0o777).toString(8)}; run chmod 600 ${file}`,
      );
    if (uid !== undefined && stat.uid !== uid)
      throw new AppError('ERR_CONFIG_INVALID', `SIGNER_KEYS_FILE ${file} is owned by uid ${stat.uid}, not by this user (${uid})`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      // The parser's message may quote the file's text, keys included: not repeated.
      throw new AppError('ERR_CONFIG_INVALID', `SIGNER_KEYS_FILE ${file} is not valid JSON`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new AppError(
        'ERR_CONFIG_INVALID',
        `SIGNER_KEYS_FILE ${file} must hold an object {"<account>": {"posting": "5...", "active": "5..."}}`,
      );
    const problems: string[] = [];
    const keys = new Map<string, Partial<Record<KeyRole, string>>>();
    for (const [account, roles] of Object.entries(parsed as Record<string, unknown>)) {
      if (!/^[a-z][a-z0-9.-]{2,15}$/.test(account)) problems.push(`"${account.slice(0, 20)}" is not an account name`);
      if (typeof roles !== 'object' || roles === null) {
        problems.push(`@${account}: expected {"posting": "5...", "active": "5..."}`);
        continue;
      }
      const entry: Partial<Record<KeyRole, string>> = {};
      for (const [role, wif] of Object.entries(roles as Record<string, unknown>)) {
        if (role !== 'posting' && role !== 'active') problems.push(`@${account}: unknown role "${role.slice(0, 20)}" (posting, active)`);
        else if (typeof wif !== 'string' || !isWif(wif)) problems.push(`@${account}: the ${role} key is not a valid private key (WIF)`);
        else entry[role] = wif;
      }
      keys.set(account, entry);
    }
    if (problems.length > 0) throw new AppError('ERR_CONFIG_INVALID', `SIGNER_KEYS_FILE ${file}: ${problems.join('; ')}`);
    return new Keys(keys);
  }

  /**
   * Keys of one account from the environment (SIGNER_ACCOUNT + SIGNER_POSTING_KEY /
   * SIGNER_ACTIVE_KEY), the alternative to a keys file. Errors name the variable, never the key.
   */
  static fromEnvironment(account: string, posting: string, active: string): Keys {
    const problems: string[] = [];
    if (!posting && !active) problems.push(`SIGNER_ACCOUNT is ${account} but neither SIGNER_POSTING_KEY nor SIGNER_ACTIVE_KEY is set`);
    const entry: Partial<Record<KeyRole, string>> = {};
    for (const [role, wif] of [
      ['posting', posting],
      ['active', active],
    ] as const) {
      if (!wif) continue;
      if (!isWif(wif)) problems.push(`SIGNER_${role.toUpperCase()}_KEY is not a valid private key (WIF)`);
      else entry[role] = wif;
    }
    if (problems.length > 0) throw new AppError('ERR_CONFIG_INVALID', problems.join('; '));
    return new Keys(new Map([[account, entry]]));
  }

  /** Keys given directly (tests). */
  static of(entries: Record<string, Partial<Record<KeyRole, string>>>): Keys {
    return new Keys(new Map(Object.entries(entries)));
  }

  get(account: string, role: KeyRole): string | undefined {
    return this.keys.get(account)?.[role];
  }

  /** Accounts and the roles held, for the start-up log line (no keys). */
  summary(): Record<string, KeyRole[]> {
    const out: Record<string, KeyRole[]> = {};
    for (const [account, roles] of this.keys) out[account] = Object.keys(roles) as KeyRole[];
    return out;
  }

  /** Make `inspect`/`JSON.stringify` of the object harmless. */
  toJSON(): Record<string, KeyRole[]> {
    return this.summary();
  }
}
