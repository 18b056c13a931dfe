// SHA-256 and byte count of a stream as it passes through, without holding any of it.
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

export class HashingCounter extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;
  private digestHex: string | undefined;

  /**
   * @param beforeEnd awaited before the stream ends: a producer that failed (xfsdump not reporting
   * SUCCESS) turns into a stream error here, so the consumer never treats the output as complete.
   */
  constructor(private readonly beforeEnd?: () => Promise<void>) {
    super({ highWaterMark: 1 << 20 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.digestHex = this.hash.digest('hex');
    if (!this.beforeEnd) return cb();
    this.beforeEnd().then(
      () => cb(),
      (err: Error) => cb(err),
    );
  }

  /** Available once the stream has ended. */
  get sha256(): string {
    if (this.digestHex === undefined) throw new Error('the stream has not ended yet');
    return this.digestHex;
  }
}
