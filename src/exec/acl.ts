// The acl tools: setfacl.
import { run } from './run.js';

/** Add ACL entries (`u:1002:r--`) to `file`; `default` sets a directory's default ACL. */
export async function addAcl(file: string, entries: string, o: { default?: boolean } = {}): Promise<void> {
  await run('setfacl', [...(o.default ? ['-d'] : []), '-m', entries, '--', file]);
}
