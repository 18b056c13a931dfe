// SMB target: a folder on a Windows/Samba share (`smb://server[:port]/share/dir`), reached through
// Samba's smbclient (src/exec/smbclient.ts). The same guarantees as the disk target: data goes to
// `.<name>.partial`, is checked for size, and only then renamed over the final name in one step
// (SMB2 rename with replace-if-exists), so there is no moment without an object under the final name
// once one existed, and never a short one.
import type { SmbTargetConfig } from '../config/types.js';
import {
  NOT_FOUND,
  SmbError,
  checkRemotePath,
  joinRemote,
  parseFreeSpace,
  parseListing,
  putSize,
  quoteListing,
  quoteRemote,
  serverUnusable,
  smbCommands,
  smbGet,
  smbPut,
  EXIT_GRACE_MS,
  type SmbEntry,
  type SmbSession,
} from '../exec/smbclient.js';
import { checkCredentialsFile } from './smb-credentials.js';
import { FdTarget, isPartialName, partialName, type Download, type ObjectInfo, type Repaired, type TransferOptions, type Upload } from './target.js';

/** `del` takes several names per smbclient run; bounded so the command line stays short. */
const DELETE_BATCH = 50;

/** Each folder on the way to `path`, outermost first (smbclient has no mkdir -p). */
function folders(path: string): string[] {
  const parts = path.split('/').slice(0, -1);
  return parts.map((_, i) => parts.slice(0, i + 1).join('/'));
}

/** The objects of a folder listing, as `list` returns them (temporary objects excluded). */
function objectsOf(dir: string, files: SmbEntry[]): ObjectInfo[] {
  return files
    .filter((e) => !isPartialName(e.name))
    .map((e) => ({ name: joinRemote(dir, e.name), size: e.size }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

export class SmbTarget extends FdTarget {
  readonly display: string;

  constructor(private readonly cfg: SmbTargetConfig) {
    super();
    checkRemotePath(cfg.dir);
    const port = cfg.port === 445 ? '' : `:${cfg.port}`;
    this.display = `smb://${cfg.server}${port}/${cfg.share}${cfg.dir ? `/${cfg.dir}` : ''}`;
  }

  /** Credentials are checked on every operation: a file made readable since the last run is refused at once. */
  private async session(): Promise<SmbSession> {
    const c = this.cfg;
    return {
      server: c.server,
      port: c.port,
      share: c.share,
      credentials: await checkCredentialsFile(c.credentials),
      minProtocol: c.minProtocol,
      signing: c.signing,
      encryption: c.encryption,
      timeoutSec: c.timeoutSec,
    };
  }

  private remote(name: string): string {
    checkRemotePath(name);
    return joinRemote(this.cfg.dir, name);
  }

  private fail(what: string, err: unknown): Error {
    if (err instanceof SmbError) return new SmbError(err.failure, `${this.display}: ${what}: ${err.message}`, err.status);
    return err as Error;
  }

  async create(name: string, o: TransferOptions = {}): Promise<Upload> {
    const final = this.remote(name);
    const tmp = this.remote(partialName(name));
    const s = await this.session();
    const put = await smbPut(s, tmp, { mkdirs: folders(final), signal: o.signal, activity: o.activity }).catch((err: unknown) => {
      throw this.fail(`saving ${name}`, err);
    });
    let committing = false;
    // smbclient gone before it got all data (logon refused, server died): the caller stops at once, even
    // if its source is idle for minutes (xfsdump scanning inodes) and no write would notice.
    const broken = new Promise<never>((_, reject) => {
      put.verdict.then(
        () => committing || reject(new SmbError('other', 'smbclient exited before it read all data')),
        (err: Error) => committing || reject(err),
      );
    });
    broken.catch(() => undefined);
    return {
      fd: put.pipe.fd,
      broken,
      commit: async (bytes) => {
        committing = true;
        await put.endData();
        // smbclient's put reports errors, but a complete-looking dump must be complete: the server's
        // listing of it, asked in the same smbclient run right after the put, must show every byte.
        const stored = putSize(await put.verdict, tmp);
        if (stored !== bytes) throw new SmbError('other', `${tmp} holds ${stored ?? 'no'} bytes on the share after ${bytes} were sent`);
        await smbCommands(s, [`rename ${quoteRemote(tmp)} ${quoteRemote(final)} -f`], { signal: o.signal });
      },
      abort: async (cause, idle) => {
        // smbclient stopped taking data (broken pipe) or exited before the end of data: it is ending on
        // its own and its verdict names the cause. Otherwise the source failed (or the commit did):
        // smbclient must not finish a truncated file.
        const smbFirst = !committing && ((cause as NodeJS.ErrnoException).code === 'EPIPE' || put.exited());
        committing = true;
        if (smbFirst) await Promise.race([put.verdict.catch(() => undefined), new Promise((r) => setTimeout(r, EXIT_GRACE_MS))]);
        put.kill();
        const err = smbFirst
          ? await put.verdict.then(
              () => new SmbError('other', 'smbclient stopped reading the data'),
              (e: Error) => e,
            )
          : cause;
        await idle;
        put.pipe.close();
        return this.cleanUp(s, name, tmp, err);
      },
    };
  }

  /** After a failed save: remove the partial now rather than at the next run's repair, if the server can. */
  private async cleanUp(s: SmbSession, name: string, tmp: string, err: Error): Promise<Error> {
    // A server that refused us or does not answer cannot clean up either (and asking would cost another
    // timeout).
    if (serverUnusable(err)) return this.fail(`saving ${name}`, err);
    const cleanup = await smbCommands(s, [`del ${quoteRemote(tmp)}`], { tolerate: NOT_FOUND }).then(
      () => undefined,
      (e: unknown) => e,
    );
    // A server dying mid-transfer sometimes makes smbclient report an odd status (INVALID_PARAMETER);
    // that the server is gone right after is the cause worth naming.
    if (err instanceof SmbError && err.failure === 'other' && serverUnusable(cleanup)) {
      const lost = new SmbError('disconnected', `connection to SMB server ${s.server}:${s.port} lost (${err.message}; then: ${(cleanup as Error).message})`, err.status);
      return this.fail(`saving ${name}`, lost);
    }
    return this.fail(`saving ${name}`, err);
  }

  async read(name: string, o: TransferOptions = {}): Promise<Download> {
    // `o.fromMedium` needs nothing here: smbclient keeps no local cache, every byte comes from the server
    // (which answers from its own cache or disk: see "What verification proves" in the README).
    const s = await this.session();
    const get = await smbGet(s, this.remote(name), o).catch((err: unknown) => {
      throw this.fail(`reading ${name}`, err);
    });
    return {
      fd: get.pipe.fd,
      finish: async (bytes) => {
        get.pipe.close();
        await get.check(bytes).catch((err: unknown) => {
          throw this.fail(`reading ${name}`, err);
        });
      },
      close: async (idle) => {
        get.kill();
        await get.verdict.catch(() => undefined);
        await idle;
        get.pipe.close();
      },
    };
  }

  /** Files in `dir`, partials included. */
  private async files(s: SmbSession, dir: string): Promise<SmbEntry[]> {
    const text = await smbCommands(s, [`ls ${quoteListing(this.remote(dir))}`], { tolerate: NOT_FOUND });
    return parseListing(text).filter((e) => !e.directory);
  }

  async list(dir: string): Promise<ObjectInfo[]> {
    const s = await this.session();
    try {
      return objectsOf(dir, await this.files(s, dir));
    } catch (err) {
      throw this.fail(`listing ${dir || '/'}`, err);
    }
  }

  async remove(name: string): Promise<void> {
    const s = await this.session();
    try {
      await smbCommands(s, [`del ${quoteRemote(this.remote(name))}`], { tolerate: NOT_FOUND });
    } catch (err) {
      throw this.fail(`removing ${name}`, err);
    }
  }

  async repair(dir: string): Promise<Repaired> {
    const s = await this.session();
    try {
      const files = await this.files(s, dir);
      const partials = files.filter((e) => isPartialName(e.name)).map((e) => joinRemote(dir, e.name));
      for (let i = 0; i < partials.length; i += DELETE_BATCH) {
        const batch = partials.slice(i, i + DELETE_BATCH);
        await smbCommands(s, batch.map((n) => `del ${quoteRemote(this.remote(n))}`), { tolerate: NOT_FOUND });
      }
      // What is left is the same listing without the partials: no second logon to list it again.
      return { removed: partials, objects: objectsOf(dir, files) };
    } catch (err) {
      throw this.fail(`repairing ${dir || '/'}`, err);
    }
  }

  /**
   * smbclient prints the free space after a successful listing. List the target folder itself (one
   * entry), or the share root before the first backup created it.
   */
  async freeSpace(): Promise<number | undefined> {
    const s = await this.session();
    try {
      const dir = this.cfg.dir;
      let text = dir ? await smbCommands(s, [`ls ${quoteRemote(dir)}`], { tolerate: NOT_FOUND }) : '';
      if (parseFreeSpace(text) === undefined) text = await smbCommands(s, ['ls'], { tolerate: NOT_FOUND });
      return parseFreeSpace(text);
    } catch (err) {
      throw this.fail('reading free space', err);
    }
  }
}
