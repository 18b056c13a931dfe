// The guest lab's command channel: one JSON object per line over a virtio-serial port, host (test/lib/vm.ts)
// <-> guest agent (test/vm/agent.ts). Output bytes travel base64-encoded, so any binary output survives.

export type HostMessage =
  | {
      t: 'run';
      id: number;
      argv: string[];
      env?: Record<string, string>;
      cwd?: string;
      /** The whole standard input, base64; stdin is closed after it (or at once when absent). */
      stdin?: string;
      /** The agent SIGKILLs the command's process group after this long and reports timedOut. */
      timeoutMs?: number;
    }
  /** Signal a running command: its whole process group unless group is false. */
  | { t: 'kill'; id: number; signal: NodeJS.Signals; group?: boolean }
  | { t: 'ping'; seq: number }
  | { t: 'poweroff' };

export type GuestMessage =
  | { t: 'ready'; pid: number }
  | { t: 'started'; id: number; pid: number }
  | { t: 'out'; id: number; fd: 1 | 2; data: string }
  | { t: 'exit'; id: number; code: number | null; signal: NodeJS.Signals | null; timedOut: boolean; error?: string }
  | { t: 'pong'; seq: number }
  | { t: 'log'; text: string };
