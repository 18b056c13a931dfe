// What is on a tape, from its first block: blank, an xfsdump tape (drkit's or someone else's), or unknown
// data. drkit labels its tapes through xfsdump's own media label (`xfsdump -M`), which xfsdump writes into
// the header at the start of every media file: "drkit/<host>/<slot>/<UTC yyyymmddThhmmssZ>".
//
// The header (xfsdump's global_hdr_t, 4 KiB at the start of the media file's first record): magic
// "xFSdump0" at 0, session id (a uuid, 16 bytes) at 0x20, host name at 0x100, session label at 0x200,
// then the drive header at 0x400 whose media header at 0x800 starts with the media label; strings are
// NUL-terminated, at most 256 bytes.
export const LABEL_PREFIX = 'drkit';

export interface TapeLabel {
  host: string;
  slot: string;
  /** When the tape was written (ISO 8601, UTC). */
  written: string;
  text: string;
}

export type TapeContents =
  | { kind: 'blank' }
  | { kind: 'xfsdump'; mediaLabel: string; sessionId: string; sessionLabel: string; hostname: string; label: TapeLabel | undefined }
  | { kind: 'unknown' };

export function makeTapeLabel(host: string, slot: string, when: Date): string {
  return `${LABEL_PREFIX}/${host}/${slot}/${when.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`;
}

export function parseTapeLabel(text: string): TapeLabel | undefined {
  const m = /^drkit\/([A-Za-z0-9][A-Za-z0-9.-]*)\/([a-z0-9][a-z0-9_-]*)\/(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/.exec(text);
  if (!m) return undefined;
  return { host: m[1]!, slot: m[2]!, written: `${m[3]}-${m[4]}-${m[5]}T${m[6]}:${m[7]}:${m[8]}Z`, text };
}

const MAGIC = 'xFSdump0';

export function tapeContents(first: Buffer | null): TapeContents {
  if (!first || first.length === 0) return { kind: 'blank' };
  if (first.length < 0x900 || first.subarray(0, 8).toString('latin1') !== MAGIC) return { kind: 'unknown' };
  const str = (off: number) => {
    const s = first.subarray(off, off + 256);
    const end = s.indexOf(0);
    return s.subarray(0, end < 0 ? s.length : end).toString('utf8');
  };
  const id = first.subarray(0x20, 0x30).toString('hex');
  const sessionId = `${id.slice(0, 8)}-${id.slice(8, 12)}-${id.slice(12, 16)}-${id.slice(16, 20)}-${id.slice(20)}`;
  const mediaLabel = str(0x800);
  return { kind: 'xfsdump', mediaLabel, sessionId, sessionLabel: str(0x200), hostname: str(0x100), label: parseTapeLabel(mediaLabel) };
}

/** How a tape is named to the operator: its label, or what it is. */
export function describeContents(c: TapeContents): string {
  if (c.kind === 'blank') return 'a blank tape';
  if (c.kind === 'unknown') return 'a tape with unknown (non-xfsdump) data';
  if (!c.label) return `an xfsdump tape not written by drkit (media label "${c.mediaLabel}", host ${c.hostname})`;
  return `tape "${c.label.text}" (host ${c.label.host}, slot ${c.label.slot}, written ${c.label.written})`;
}
