// Running a command as another user (util-linux setpriv): real and effective uid and gid, that user's
// supplementary groups, and a fresh environment (--reset-env: nothing of ours, such as NODE_OPTIONS,
// reaches the child). setpriv keeps our fds, so a root parent can hand the child an open directory.
export interface AsUser {
  uid: number;
  gid: number;
}

/** The argument list that runs `argv` as `user`: spawn('setpriv', asUserArgs(user, argv)). */
export function asUserArgs(user: AsUser, argv: readonly string[]): string[] {
  return ['--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups', '--reset-env', '--', ...argv];
}
