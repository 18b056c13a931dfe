// Which tape is due: the rotation plan of a tape target. A slot is one physical tape ("mon", "tue", ...,
// "month"); `weekday` takes the slot named after the day of the backup, `cycle` the slot after the one
// written last; a monthly slot takes the first backup of each calendar month. Retention on tape is this
// rotation: a tape is reused when its slot comes round, and drkit never deletes a dump any other way.
import type { TapeTargetConfig } from '../config/types.js';
import type { Manifest } from '../catalog/manifest.js';

const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

export function dueSlot(t: Pick<TapeTargetConfig, 'slots' | 'rotation' | 'monthlySlot'>, dumps: Manifest[], now: Date): string {
  if (t.monthlySlot) {
    const month = (d: Date) => `${d.getFullYear()}-${d.getMonth()}`;
    const thisMonth = dumps.some((d) => d.medium?.slot === t.monthlySlot && month(new Date(d.started)) === month(now));
    if (!thisMonth) return t.monthlySlot;
  }
  if (t.rotation === 'weekday') {
    const day = WEEKDAYS[now.getDay()]!;
    if (t.slots.includes(day)) return day;
  }
  // cycle (and a weekday plan on a day without a slot): the slot after the last one written.
  const last = [...dumps].reverse().find((d) => d.medium && t.slots.includes(d.medium.slot));
  if (!last) return t.slots[0]!;
  return t.slots[(t.slots.indexOf(last.medium!.slot) + 1) % t.slots.length]!;
}
