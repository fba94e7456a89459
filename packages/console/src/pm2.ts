import pm2 from 'pm2';

/** What the status needs of one PM2 app. */
export interface Pm2App {
  name: string;
  status: string;
  restarts: number;
  memory: number;
  /** When it last came online (ms since the epoch). */
  since: number | null;
  pid: number | null;
  /** Its script lives under bots/: a bot. */
  bot: boolean;
  env: Record<string, unknown>;
}

/** The apps of the PM2 daemon of PM2_HOME (started if none runs, as `pm2 jlist` does). */
export function listPm2Apps(): Promise<Pm2App[]> {
  return new Promise((resolve, reject) => {
    pm2.connect((err) => {
      if (err) return reject(err);
      pm2.list((err2, list) => {
        pm2.disconnect();
        if (err2) return reject(err2);
        resolve(
          list.map((p) => {
            const env = (p.pm2_env ?? {}) as Record<string, unknown>;
            return {
              name: p.name ?? '?',
              status: String(env.status ?? 'unknown'),
              restarts: Number(env.restart_time ?? 0),
              memory: p.monit?.memory ?? 0,
              since: typeof env.pm_uptime === 'number' ? env.pm_uptime : null,
              pid: p.pid ? p.pid : null,
              bot: String(env.pm_exec_path ?? '').includes('/bots/'),
              env,
            };
          }),
        );
      });
    });
  });
}
