// Loop devices for image files (the restore drill's scratch filesystem): attach, detach, and which
// devices an image is attached to (so that leftovers of a killed run are found by the image's name).
import { run } from './run.js';

/** Attach `image` to a free loop device; returns /dev/loopN. */
export async function attachLoop(image: string): Promise<string> {
  const r = await run('losetup', ['--find', '--show', '--', image]);
  const dev = r.stdout.trim();
  if (!/^\/dev\/loop\d+$/.test(dev)) throw new Error(`losetup: unexpected device name ${JSON.stringify(dev)} for ${image}`);
  return dev;
}

export async function detachLoop(dev: string): Promise<void> {
  await run('losetup', ['--detach', dev]);
}

/** The loop devices `image` is attached to (none: []). */
export async function loopsOf(image: string): Promise<string[]> {
  const r = await run('losetup', ['--noheadings', '--output', 'NAME', '--associated', image]);
  return r.stdout.split('\n').map((l) => l.trim()).filter((l) => /^\/dev\/loop\d+$/.test(l));
}
