// The shipped spool modules against the real applications: each test starts a private server (PostgreSQL,
// MariaDB) on a unix socket in a temporary directory, or builds a real slapd configuration or Subversion
// repository, runs NAME.backup through drkit's spool runner, destroys the data, runs NAME.restore and
// proves the data is back exactly. Servers are stopped by PID on teardown, also when a test fails.
import t from 'tap';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFile, chmod, chown, lstat, mkdir, readdir, readFile, readlink, rm, writeFile, access, open } from 'node:fs/promises';
import path from 'node:path';
import { requireTools, tmpDir, makeLoopXfs } from './lib/loopfs.js';
import { backupModule, checkModule, restoreModule, writeModuleConf, type ModuleHost } from './lib/module-run.js';
import { postgresBin } from './lib/dbservers.js';

type Teardown = { teardown(fn: () => unknown): void };

/** An appliance of temporary directories; `root` may be given (a loop XFS, for example). */
async function makeHost(t: Teardown, root?: string): Promise<ModuleHost> {
  const base = await tmpDir('drkit-modhost-');
  t.teardown(base.cleanup);
  const host = { root: root ?? path.join(base.dir, 'root'), home: path.join(base.dir, 'home'), etc: path.join(base.dir, 'etc'), spool: path.join(base.dir, 'spool') };
  for (const d of [host.root, host.home, host.etc]) await mkdir(d, { recursive: true });
  return host;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function account(name: string): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, name], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/** A directory for a server that runs as `user`, removed on teardown after the server has stopped. */
async function serverDir(t: Teardown, prefix: string, user: string): Promise<{ dir: string; teardown: (fn: () => Promise<void>) => void }> {
  const d = await tmpDir(prefix);
  const { uid, gid } = account(user);
  await chown(d.dir, uid, gid);
  await chmod(d.dir, 0o755);
  const stops: (() => Promise<void>)[] = [];
  t.teardown(async () => {
    for (const stop of stops) await stop();
    await d.cleanup();
  });
  return { dir: d.dir, teardown: (fn) => stops.push(fn) };
}

/** Start a server in the foreground with its output in `logFile`; stop it by PID on teardown (SIGTERM, then SIGKILL). */
async function startServer(
  stopOn: (fn: () => Promise<void>) => void,
  cmd: string,
  args: string[],
  opts: { uid?: number; gid?: number; cwd: string; logFile: string },
): Promise<ChildProcess> {
  const log = await open(opts.logFile, 'a');
  const child = spawn(cmd, args, { cwd: opts.cwd, uid: opts.uid, gid: opts.gid, stdio: ['ignore', log.fd, log.fd] });
  await log.close();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  stopOn(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const hard = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(hard);
  });
  return child;
}

async function waitUntil(what: string, probe: () => boolean, child: ChildProcess, logFile: string, seconds = 30): Promise<void> {
  for (let i = 0; i < seconds * 5; i++) {
    if (child.exitCode !== null) throw new Error(`${what} exited (code ${child.exitCode}): ${await readFile(logFile, 'utf8')}`);
    if (probe()) return;
    await sleep(200);
  }
  throw new Error(`${what} not ready after ${seconds} s: ${await readFile(logFile, 'utf8')}`);
}

const succeeds = (cmd: string, args: string[]) => {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

/**
 * Every entry of a tree with what a restore must keep: type, mode, owner, size, content hash, mtime,
 * symlink target, hard links, and all xattrs (ACLs are xattrs: system.posix_acl_*).
 */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  const firstPathOfInode = new Map<number, string>();
  const walk = async (rel: string) => {
    const abs = path.join(dir, rel);
    const st = await lstat(abs);
    const xattrs = execFileSync('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', abs], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l && !l.startsWith('# file:'))
      .join(',');
    let what: string;
    if (st.isDirectory()) what = 'dir';
    else if (st.isSymbolicLink()) what = `link -> ${await readlink(abs)}`;
    else {
      const seen = firstPathOfInode.get(st.ino);
      if (seen === undefined) firstPathOfInode.set(st.ino, rel);
      what = `file ${st.size} ${createHash('sha256').update(await readFile(abs)).digest('hex')} mtime ${Math.floor(st.mtimeMs / 1000)}${seen === undefined ? '' : ` hardlink of ${JSON.stringify(seen)}`}`;
    }
    out.push(`${JSON.stringify(rel)} ${what} mode ${(st.mode & 0o7777).toString(8)} owner ${st.uid}:${st.gid} xattrs [${xattrs}]`);
    if (st.isDirectory()) for (const name of (await readdir(abs)).sort()) await walk(path.join(rel, name));
  };
  await walk('.');
  return out;
}

t.test('every module exits 3 (skipped) on a machine without its application', async (t) => {
  const host = await makeHost(t);
  for (const name of ['etc', 'postgresql', 'mariadb', 'openldap', 'svn']) {
    const r = await backupModule(host, name);
    t.equal(r.outcome.status, 'skipped', `${name}: skipped`, { log: r.log });
    t.match(r.log, /not applicable: /, `${name} says why`);
    await t.rejects(access(path.join(host.spool, name)), `${name}: no spool kept`);
  }
});

t.test('etc: archive with owners, modes, ACLs, xattrs and links; verified reference restore; missing files put back', async (t) => {
  requireTools({ tar: 'tar', setfacl: 'acl', getfattr: 'attr', setfattr: 'attr', sha256sum: 'coreutils', diff: 'diffutils' });
  const fs = await makeLoopXfs(t, { label: 'modroot' });
  const host = await makeHost(t, fs.mnt);
  const etc = path.join(host.root, 'etc');
  const file = async (rel: string, text: string, mode: number, uid = 0, gid = 0) => {
    await mkdir(path.dirname(path.join(etc, rel)), { recursive: true });
    await writeFile(path.join(etc, rel), text);
    await chmod(path.join(etc, rel), mode);
    await chown(path.join(etc, rel), uid, gid);
  };
  await file('hostname', 'modhost1\n', 0o644);
  await file('shadow', 'root:*:20000:0:99999:7:::\n', 0o640, 0, 42);
  await file('app/app.conf', 'listen = 8080\n', 0o664, 1001, 1002);
  await file('app/secret', 'token\n', 0o600, 1001, 1002);
  await file('with space.conf', 'a = 1\n', 0o644);
  await file('ünïcode.conf', 'b = 2\n', 0o644);
  await file('new\nline', 'odd name\n', 0o644);
  await mkdir(path.join(etc, 'app/empty-dir'), { mode: 0o750 });
  await chmod(path.join(etc, 'app/empty-dir'), 0o750);
  await mkdir(path.join(etc, 'ssl'));
  execFileSync('ln', ['-s', '../hostname', path.join(etc, 'ssl/link')]);
  execFileSync('ln', [path.join(etc, 'shadow'), path.join(etc, 'shadow.hardlink')]);
  execFileSync('setfacl', ['-m', 'u:1234:rw,g:55:r', path.join(etc, 'app/app.conf')]);
  execFileSync('setfacl', ['-d', '-m', 'g:55:rx', path.join(etc, 'app')]);
  execFileSync('setfattr', ['-n', 'user.origin', '-v', 'vendor', path.join(etc, 'app/app.conf')]);
  execFileSync('setfattr', ['-n', 'trusted.drkit', '-v', 'kept', path.join(etc, 'shadow')]);
  const original = await snapshot(etc);

  const b = await backupModule(host, 'etc');
  t.equal(b.outcome.status, 'ok', 'backup ok', { log: b.log });
  const spool = path.join(host.spool, 'etc');
  t.same((await readdir(spool)).sort(), ['INFO', 'MANIFEST', 'SHA256SUMS', 'etc.tar.gz'], 'the spool holds archive, manifest, info, checksums');
  t.match(await readFile(path.join(spool, 'INFO'), 'utf8'), /^files=8$/m, 'INFO counts the regular files');
  t.equal((await readFile(path.join(spool, 'MANIFEST'), 'utf8')).trimEnd().split('\n').length, 8, 'one MANIFEST line per file');
  t.ok(succeeds('sh', ['-c', 'cd "$1" && sha256sum --quiet --strict -c SHA256SUMS', 'sh', spool]), 'SHA256SUMS checks');

  // Disaster: /etc is gone. The restore unpacks the verified reference copy, exactly as it was.
  await rm(etc, { recursive: true });
  const r = await restoreModule(host, 'etc');
  t.equal(r.exitCode, 0, 'restore ok', { log: r.log });
  const out = path.join(host.root, 'var/lib/drkit/etc-restored');
  t.same(await snapshot(path.join(out, 'etc')), original, 'the reference copy equals /etc at backup time: content, modes, owners, ACLs, xattrs, links');
  t.equal((await lstat(out)).mode & 0o777, 0o700, 'the reference copy is readable by root only');
  t.match(await readFile(path.join(out, 'DIFFERENCES'), 'utf8'), /etc does not exist/);
  await t.rejects(access(etc), 'the live /etc is not touched in reference mode');

  // A reinstalled /etc with files missing and one changed: ETC_RESTORE=missing puts back only what is missing.
  execFileSync('cp', ['-a', path.join(out, 'etc'), etc]);
  await rm(path.join(etc, 'app/secret'));
  await rm(path.join(etc, 'app/empty-dir'), { recursive: true });
  await rm(path.join(etc, 'ssl/link'));
  await writeFile(path.join(etc, 'hostname'), 'reinstalled\n');
  await writeModuleConf(host, 'etc', 'ETC_RESTORE=missing\n');
  const m = await restoreModule(host, 'etc');
  t.equal(m.exitCode, 0, 'restore ok', { log: m.log });
  t.match(m.log, /putting back .*\/etc\/app\/secret/, 'the log names what is put back');
  t.equal(await readFile(path.join(etc, 'hostname'), 'utf8'), 'reinstalled\n', 'an existing file is never replaced');
  const isHostname = (l: string) => l.startsWith('"hostname" ');
  t.same((await snapshot(etc)).filter((l) => !isHostname(l)), original.filter((l) => !isHostname(l)), 'missing entries are back with their metadata');
  t.match(await readFile(path.join(out, 'DIFFERENCES'), 'utf8'), /^Files .*\/etc\/hostname and .*\/etc\/hostname differ\n$/, 'DIFFERENCES lists the one changed file');

  // No /etc at all: ETC_RESTORE=missing puts all of it back.
  await rm(etc, { recursive: true });
  const all = await restoreModule(host, 'etc');
  t.equal(all.exitCode, 0, 'restore ok', { log: all.log });
  t.same(await snapshot(etc), original, 'a missing /etc comes back whole, with its own metadata');

  // A damaged spool is refused before anything is unpacked.
  const tarball = path.join(spool, 'etc.tar.gz');
  const bytes = await readFile(tarball);
  bytes[bytes.length >> 1] ^= 0xff;
  await writeFile(tarball, bytes);
  const d = await restoreModule(host, 'etc');
  t.not(d.exitCode, 0, 'restore refused');
  t.match(d.log, /do not match SHA256SUMS/, 'it says why');
  t.same(await snapshot(path.join(out, 'etc')), original, 'the previous reference copy is left alone');

  // The settings file runs as root: one that others could change is refused.
  await writeModuleConf(host, 'etc', 'ETC_RESTORE=missing\n', 0o664);
  const g = await backupModule(host, 'etc');
  t.equal(g.outcome.status, 'failed', 'backup failed');
  t.match(g.log, /refusing to read .*modules\.d\/etc\.conf: it must be owned by root and not writable by group or others/, 'it says why');
});

t.test('postgresql: roles and every database dumped; dropped databases and roles restored', async (t) => {
  requireTools({ psql: 'postgresql-client', pg_dump: 'postgresql-client', pg_dumpall: 'postgresql-client', pg_restore: 'postgresql-client', pg_isready: 'postgresql-client', runuser: 'util-linux' });
  const bin = postgresBin();
  const pg = account('postgres');
  const srv = await serverDir(t, 'drkit-pg-', 'postgres');
  const data = path.join(srv.dir, 'data');
  const logFile = path.join(srv.dir, 'server.log');
  execFileSync(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-E', 'UTF8', '--auth-local=peer', '--auth-host=reject', '--no-sync'], { ...pg, cwd: srv.dir, stdio: 'pipe' });
  const server = await startServer(srv.teardown, path.join(bin, 'postgres'), ['-D', data, '-k', srv.dir, '-c', 'listen_addresses=', '-c', 'fsync=off'], { ...pg, cwd: srv.dir, logFile });
  await waitUntil('postgres', () => succeeds('pg_isready', ['-q', '-h', srv.dir]), server, logFile);
  const sql = (db: string, text: string) =>
    execFileSync('psql', ['-XAtq', '-v', 'ON_ERROR_STOP=1', '-h', srv.dir, '-d', db, '-c', text], { ...pg, cwd: srv.dir, encoding: 'utf8' }).trim();
  const weird = "dbname='we=ird db'";
  sql('postgres', "CREATE ROLE shopkeeper LOGIN PASSWORD 'pw-not-in-any-log'");
  sql('postgres', 'CREATE DATABASE shop OWNER shopkeeper');
  sql('postgres', 'CREATE DATABASE "we=ird db"');
  sql('shop', "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL); INSERT INTO items SELECT g, 'item ' || g || ' ü' FROM generate_series(1, 1000) g; ALTER TABLE items OWNER TO shopkeeper");
  sql(weird, "CREATE TABLE notes (t text); INSERT INTO notes VALUES ('héllo'), ('world')");
  const state = () => ({
    role: sql('postgres', "SELECT rolpassword FROM pg_authid WHERE rolname = 'shopkeeper'"),
    items: sql('shop', "SELECT count(*) || ' ' || sum(id) || ' ' || md5(string_agg(name, ',' ORDER BY id)) || ' ' || pg_get_userbyid(relowner) FROM items, pg_class WHERE relname = 'items' GROUP BY relowner"),
    notes: sql(weird, 'SELECT string_agg(t, \',\' ORDER BY t) FROM notes'),
    tables: sql(weird, "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'") + '/' + sql('postgres', "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"),
  });
  const before = state();
  t.match(before.role, /^SCRAM-SHA-256\$/, 'the role has a password hash');

  const host = await makeHost(t);
  await mkdir(path.join(host.root, 'var/lib/postgresql'), { recursive: true });
  await writeModuleConf(host, 'postgresql', `PGHOST=${srv.dir}\nPGPORT=5432\n`);
  const b = await backupModule(host, 'postgresql');
  t.equal(b.outcome.status, 'ok', 'backup ok', { log: b.log });
  const spool = path.join(host.spool, 'postgresql');
  t.equal(await readFile(path.join(spool, 'DATABASES'), 'utf8'), '001.pgdump\tpostgres\n002.pgdump\tshop\n003.pgdump\twe=ird db\n');
  t.notMatch(b.log, /pw-not-in-any-log/);

  // The drill's check: every dump's table of contents reads (pg_restore --list); a dump cut short does
  // not, even with checksums that match it.
  const c = await checkModule(host, 'postgresql');
  t.equal(c.exitCode, 0, 'postgresql.check passes', { log: c.log });
  t.match(c.log, /002\.pgdump \(database shop\): \d+ entries[\s\S]*3 database dump\(s\) readable/);
  const cut = path.join(host.etc, 'cut', 'postgresql');
  await mkdir(path.dirname(cut), { recursive: true });
  execFileSync('cp', ['-a', spool, cut]);
  execFileSync('truncate', ['-s', '100', path.join(cut, '002.pgdump')]);
  execFileSync('sh', ['-c', `cd "$1" && find . -type f ! -name 'SHA256SUMS*' -print0 | sort -z | xargs -0 sha256sum -- > SHA256SUMS`, 'sh', cut]);
  const cc = await checkModule(host, 'postgresql', cut);
  t.not(cc.exitCode, 0, 'a truncated dump fails the check');
  t.match(cc.log, /pg_restore --list 002\.pgdump \(database shop\) failed/);

  // Disaster: a database and its owner dropped, another one changed, junk in "postgres".
  sql('postgres', 'DROP DATABASE shop');
  sql('postgres', 'DROP ROLE shopkeeper');
  sql(weird, 'DELETE FROM notes; CREATE TABLE extra (x int)');
  sql('postgres', 'CREATE TABLE junk (x int)');
  const r = await restoreModule(host, 'postgresql');
  t.equal(r.exitCode, 0, 'restore ok', { log: r.log });
  t.same(state(), before, 'roles (with password hash), owners, rows and tables are as they were at backup time');

  // An unreachable server fails the module; drkit keeps the last good spool.
  const sums = await readFile(path.join(spool, 'SHA256SUMS'), 'utf8');
  await writeModuleConf(host, 'postgresql', `PGHOST=${srv.dir}\nPGPORT=1\n`);
  const f = await backupModule(host, 'postgresql');
  t.equal(f.outcome.status, 'failed', 'backup failed');
  t.match(f.log, /error: pg_dumpall --globals-only failed \(server .* port 1/, 'it names the server');
  t.equal(await readFile(path.join(spool, 'SHA256SUMS'), 'utf8'), sums, 'the previous spool survives');
});

t.test('mariadb: all databases with routines, triggers, events, users; dropped ones restored', async (t) => {
  requireTools({ 'mariadb-install-db': 'mariadb-server', mariadbd: 'mariadb-server', mariadb: 'mariadb-client', 'mariadb-dump': 'mariadb-client', 'mariadb-admin': 'mariadb-client' });
  const srv = await serverDir(t, 'drkit-mariadb-', 'mysql');
  const data = path.join(srv.dir, 'data');
  const socket = path.join(srv.dir, 'mysqld.sock');
  const logFile = path.join(srv.dir, 'server.log');
  execFileSync('mariadb-install-db', ['--no-defaults', '--user=mysql', `--datadir=${data}`, '--auth-root-authentication-method=socket', '--skip-test-db'], { stdio: 'pipe' });
  const server = await startServer(
    srv.teardown,
    'mariadbd',
    ['--no-defaults', '--user=mysql', `--datadir=${data}`, `--socket=${socket}`, '--skip-networking', `--pid-file=${path.join(srv.dir, 'mysqld.pid')}`, `--log-error=${logFile}`, '--innodb-buffer-pool-size=16M'],
    { cwd: srv.dir, logFile },
  );
  await waitUntil('mariadbd', () => succeeds('mariadb-admin', [`--socket=${socket}`, 'ping']), server, logFile);
  const sql = (text: string, env: NodeJS.ProcessEnv = {}, user = 'root') =>
    execFileSync('mariadb', [`--socket=${socket}`, '-u', user, '--batch', '--skip-column-names', '-e', text], { encoding: 'utf8', env: { ...process.env, ...env } }).trim();
  sql(`CREATE DATABASE shop CHARACTER SET utf8mb4;
    CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(50), data BLOB, price INT) ENGINE=InnoDB;
    INSERT INTO shop.items VALUES (1, 'Tee ☕', X'00FF10', 5), (2, 'Ünïcode', NULL, 50), (3, 'plain', X'', 500);
    CREATE VIEW shop.expensive AS SELECT id, name FROM shop.items WHERE price > 10;
    CREATE TABLE shop.audit (id INT, at VARCHAR(10));
    CREATE TRIGGER shop.items_ai AFTER INSERT ON shop.items FOR EACH ROW INSERT INTO shop.audit VALUES (NEW.id, 'insert');
    CREATE DATABASE crm;
    CREATE TABLE crm.counter (n INT) ENGINE=InnoDB; INSERT INTO crm.counter VALUES (41);
    CREATE PROCEDURE crm.bump() UPDATE crm.counter SET n = n + 1;
    CREATE EVENT crm.nightly ON SCHEDULE EVERY 1 DAY DISABLE DO CALL crm.bump();
    CREATE USER app@localhost IDENTIFIED BY 'pw-not-in-any-log';
    GRANT SELECT ON shop.* TO app@localhost;`);
  const state = () =>
    [
      'SELECT id, name, HEX(data), price FROM shop.items ORDER BY id',
      'SELECT * FROM shop.expensive ORDER BY id',
      "SELECT TRIGGER_NAME, ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'shop'",
      "SELECT ROUTINE_NAME, ROUTINE_DEFINITION FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'crm'",
      "SELECT EVENT_NAME, EVENT_DEFINITION, STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'crm'",
      'SHOW GRANTS FOR app@localhost',
    ].map((q) => sql(q));
  const before = state();

  const host = await makeHost(t);
  await mkdir(path.join(host.root, 'var/lib/mysql'), { recursive: true });
  await writeModuleConf(host, 'mariadb', `MARIADB_SOCKET=${socket}\n`);
  const b = await backupModule(host, 'mariadb');
  t.equal(b.outcome.status, 'ok', 'backup ok', { log: b.log });
  t.match(await readFile(path.join(host.spool, 'mariadb/INFO'), 'utf8'), /^databases=3$/m, 'crm, mysql, shop');

  sql('DROP DATABASE shop; DROP DATABASE crm; DROP USER app@localhost');
  const r = await restoreModule(host, 'mariadb');
  t.equal(r.exitCode, 0, 'restore ok', { log: r.log });
  t.same(state(), before, 'rows, view, trigger, procedure, event and grants (with password hash) are back');
  t.equal(sql('SELECT COUNT(*) FROM shop.items', { MYSQL_PWD: 'pw-not-in-any-log' }, 'app'), '3', 'the restored user logs in with its password');
  sql('CALL crm.bump()');
  t.equal(sql('SELECT n FROM crm.counter'), '42', 'the restored procedure runs');
});

/** A real slapd cn=config: mdb backend module, core schema, one mdb database whose directory path is long enough to be folded in LDIF. */
function slapdConfig(dir: string, dbDir: string): string {
  return `dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: ${dir}/slapd.pid

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

${execFileSync('cat', ['/etc/ldap/schema/core.ldif'], { encoding: 'utf8' })}
dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcRootDN: gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: dc=example,dc=com
olcRootDN: cn=admin,dc=example,dc=com
olcDbDirectory: ${dbDir}
olcDbMaxSize: 16777216
`;
}

const directoryData = `dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

${Array.from(
  { length: 20 },
  (_, i) => `dn: cn=Person ${i},ou=people,dc=example,dc=com
objectClass: person
cn: Person ${i}
sn: Surname${i}
description:: ${Buffer.from(`Ünïcode description number ${i}, long enough to be folded by slapcat: ${'x'.repeat(60)}`).toString('base64')}
`,
).join('\n')}`;

t.test('openldap: configuration and data as LDIF; restored into an empty mdb with every operational attribute', async (t) => {
  requireTools({ slapadd: 'slapd', slapcat: 'slapd', runuser: 'util-linux' });
  const srv = await serverDir(t, 'drkit-ldap-', 'openldap');
  const ldap = account('openldap');
  const confDir = path.join(srv.dir, 'slapd.d');
  const dbDir = path.join(srv.dir, 'databases', 'example-com-main-database-with-a-directory-name-long-enough-to-fold');
  for (const d of [confDir, dbDir]) await mkdir(d, { recursive: true });
  execFileSync('chown', ['-R', 'openldap:', srv.dir]);
  const as = { ...ldap, cwd: srv.dir };
  execFileSync('slapadd', ['-F', confDir, '-n', '0'], { ...as, input: slapdConfig(srv.dir, dbDir), stdio: ['pipe', 'pipe', 'pipe'] });
  execFileSync('slapadd', ['-F', confDir, '-n', '1'], { ...as, input: directoryData, stdio: ['pipe', 'pipe', 'pipe'] });
  const slapcat = (n: number) => execFileSync('slapcat', ['-F', confDir, '-n', String(n)], { ...as, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const config = slapcat(0);
  const directory = slapcat(1);
  t.match(config, /olcDbDirectory: .*\n .*/, 'the database directory is folded in the config LDIF');

  const host = await makeHost(t);
  await writeModuleConf(host, 'openldap', `LDAP_CONFDIR=${confDir}\n`);
  const b = await backupModule(host, 'openldap');
  t.equal(b.outcome.status, 'ok', 'backup ok', { log: b.log });
  const spool = path.join(host.spool, 'openldap');
  t.equal(await readFile(path.join(spool, 'DATABASES'), 'utf8'), `1\tmdb\t${dbDir}\n`);
  t.match(await readFile(path.join(spool, 'INFO'), 'utf8'), /^entries\.1=22$/m);

  // Disaster: configuration and database gone.
  await rm(confDir, { recursive: true });
  await rm(path.join(srv.dir, 'databases'), { recursive: true });
  const r = await restoreModule(host, 'openldap');
  t.equal(r.exitCode, 0, 'restore ok', { log: r.log });
  t.equal(slapcat(0), config, 'the configuration is back, entry for entry');
  t.equal(slapcat(1), directory, 'the directory is back with entryUUID, entryCSN and timestamps');
  t.equal((await lstat(path.join(dbDir, 'data.mdb'))).uid, ldap.uid, 'the database belongs to openldap');

  // slapd running (its pid file names a live process): the restore refuses to touch its database.
  const pidFile = path.join(srv.dir, 'slapd.pid');
  await writeFile(pidFile, `${process.pid}\n`);
  const refused = await restoreModule(host, 'openldap');
  t.not(refused.exitCode, 0, 'restore refused');
  t.match(refused.log, /slapd is running \(pid \d+ in .*slapd\.pid\): stop it/, 'it says why');
  await rm(pidFile);

  // Restoring over an existing database keeps the configuration and the old database file beside the new one.
  const again = await restoreModule(host, 'openldap');
  t.equal(again.exitCode, 0, 'restore ok', { log: again.log });
  t.match(again.log, /keeping the configuration/, 'the existing configuration is kept');
  await access(path.join(dbDir, 'data.mdb.drkit-old'));
  t.equal(slapcat(1), directory, 'the directory is back again');
});

t.test('svn: repositories found under the roots, dumped, restored with history, uuid, hooks and owner', async (t) => {
  requireTools({ svnadmin: 'subversion', svnlook: 'subversion', svnmucc: 'subversion', svn: 'subversion' });
  const host = await makeHost(t);
  const h = (rel: string) => path.join(host.home, rel);
  const project = h('svn/project');
  const other = h('team/repos/other');
  for (const repo of [project, other, h('.systembackup/srv/svn/old'), h('too/deep/for/the/search')]) {
    await mkdir(path.dirname(repo), { recursive: true });
    execFileSync('svnadmin', ['create', repo]);
  }
  const work = h('tmp-file');
  const commit = (repo: string, message: string, ...ops: string[]) => execFileSync('svnmucc', ['-m', message, '-U', `file://${repo}`, ...ops], { stdio: 'pipe' });
  await writeFile(work, 'one\n');
  commit(project, 'first commit', 'mkdir', 'trunk', 'put', work, 'trunk/a.txt');
  await writeFile(work, Buffer.from([0, 1, 2, 255, 254]));
  commit(project, 'a binary file, and a property', 'put', work, 'trunk/bin.dat', 'propset', 'svn:mime-type', 'application/octet-stream', 'trunk/bin.dat');
  await writeFile(work, 'two\n');
  commit(project, 'second\nwith two lines', 'put', work, 'trunk/a.txt');
  commit(other, 'other repo', 'mkdir', 'branches');
  await writeFile(path.join(project, 'hooks/post-commit'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  await appendFile(path.join(project, 'conf/svnserve.conf'), '[general]\nanon-access = none\n');
  execFileSync('chown', ['-R', '33:33', project]);
  const dumpOf = (repo: string) => execFileSync('svnadmin', ['dump', '--quiet', repo], { maxBuffer: 64 << 20 });
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const projectDump = sha(dumpOf(project));
  const otherDump = sha(dumpOf(other));
  const hook = await readFile(path.join(project, 'hooks/post-commit'), 'utf8');
  const serveConf = await readFile(path.join(project, 'conf/svnserve.conf'), 'utf8');

  const b = await backupModule(host, 'svn');
  t.equal(b.outcome.status, 'ok', 'backup ok', { log: b.log });
  const repos = (await readFile(path.join(host.spool, 'svn/REPOS'), 'utf8')).trimEnd().split('\n').map((l) => l.split('\t'));
  t.same(
    repos.map(([id, rev, , owner, p]) => [id, rev, owner, p]),
    [
      ['001', '3', '33:33', project],
      ['002', '1', '0:0', other],
    ],
    'both repositories found, hidden and too-deep ones not',
  );

  const c = await checkModule(host, 'svn');
  t.equal(c.exitCode, 0, 'svn.check passes', { log: c.log });
  t.match(c.log, /001\.svndump \(.*\): loads and verifies, revisions 0 to 3[\s\S]*2 repository dump\(s\) verified/);

  // Disaster: one repository deleted; the other has a commit after the backup.
  await rm(project, { recursive: true });
  commit(other, 'after the backup', 'mkdir', 'tags');
  const r = await restoreModule(host, 'svn');
  t.equal(r.exitCode, 0, 'restore ok', { log: r.log });
  t.ok(succeeds('svnadmin', ['verify', '--quiet', project]), 'svnadmin verify passes');
  t.equal(sha(dumpOf(project)), projectDump, 'every revision, revision property and file is as it was');
  t.equal(sha(dumpOf(other)), otherDump, 'the other repository is back at its backed-up revision');
  t.match(execFileSync('svn', ['log', `file://${project}`], { encoding: 'utf8' }), /second\nwith two lines[\s\S]*a binary file[\s\S]*first commit/, 'svn log shows every commit message');
  t.equal(execFileSync('svn', ['cat', `file://${project}/trunk/a.txt`], { encoding: 'utf8' }), 'two\n');
  t.equal(execFileSync('svnlook', ['uuid', project], { encoding: 'utf8' }), repos[0]![2] + '\n', 'same uuid');
  t.equal(await readFile(path.join(project, 'hooks/post-commit'), 'utf8'), hook);
  t.equal((await lstat(path.join(project, 'hooks/post-commit'))).mode & 0o777, 0o755, 'the hook is still executable');
  t.equal(await readFile(path.join(project, 'conf/svnserve.conf'), 'utf8'), serveConf);
  t.equal((await lstat(path.join(project, 'db/current'))).uid, 33, 'the owner is kept');
  t.equal(execFileSync('svnlook', ['youngest', h('team/repos/.other.drkit-old')], { encoding: 'utf8' }), '2\n', 'the replaced repository is kept, hidden, with its newer commit');
});
