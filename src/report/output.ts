/**
 * Where a run's files go, checked before anything starts and written so that a finished run is never lost.
 *
 * - The default is ./results/<run id>.json under the current working directory (as k6 and autocannon write where
 *   they run): under `npx` or a global install the package's own folder is a cache, not a place for results.
 * - --output names a file whose folder must exist: nothing is created on the user's behalf but the default
 *   results/ folder. (Node's recursive mkdir never returns on some paths, /proc/x for one.)
 * - Checking means creating and removing a probe file there, which catches what permission bits do not: a
 *   read-only file system, /proc, a full disk's quota.
 * - Every file is written under a unique temporary name opened exclusively, then renamed into place, so a
 *   crash never leaves half a file and no other file (or symlink) is ever written through.
 * - If the real location fails at the end anyway, the files go to a fresh folder under the system's temporary
 *   directory, and the caller says where.
 */
import { closeSync, mkdirSync, openSync, rmSync, statSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { mkdtemp, open, rename, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';

/** The folder (and file) cannot take the results; `message` says which and why, and what to do. */
export class OutputLocationError extends Error {
  override readonly name = 'OutputLocationError';
}

export const DEFAULT_RESULTS_FOLDER = 'results';

/** The default results file of a run: results/<run id>.json under the current working directory. */
export function defaultResultsPath(runId: string, cwd = process.cwd()): string {
  return join(cwd, DEFAULT_RESULTS_FOLDER, `${runId}.json`);
}

function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code === undefined ? String(e.message) : `${e.code}${e.code === 'EACCES' || e.code === 'EPERM' ? ' (permission denied)' : e.code === 'EROFS' ? ' (read-only file system)' : e.code === 'ENOSPC' ? ' (no space left)' : ''}`;
}

/** Creates and removes a uniquely named file in `folder`; throws OutputLocationError saying why it could not. */
function probe(folder: string, what: string): void {
  const file = join(folder, `.rtp-bench-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o600);
  } catch (err) {
    throw new OutputLocationError(`${what}: cannot create a file in ${folder}: ${errnoText(err)}`);
  }
  try {
    writeSync(fd, 'x');
  } catch (err) {
    throw new OutputLocationError(`${what}: cannot write in ${folder}: ${errnoText(err)}`);
  } finally {
    closeSync(fd);
    unlinkSync(file);
  }
}

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new OutputLocationError(`cannot look at ${path}: ${errnoText(err)}`);
  }
}

/**
 * --output FILE: the absolute path, once FILE's folder exists, is a folder, takes a new file, and FILE is not a
 * folder itself. Throws OutputLocationError (the caller names the flag).
 */
export function checkOutputFile(value: string): string {
  const file = resolve(value);
  const stats = statOrNull(file);
  if (stats?.isDirectory()) throw new OutputLocationError(`${file} is a folder: give a file name in it, e.g. ${join(file, 'run.json')}`);
  const folder = dirname(file);
  const folderStats = statOrNull(folder);
  if (folderStats === null) throw new OutputLocationError(`folder ${folder} does not exist: create it first, or write to an existing folder`);
  if (!folderStats.isDirectory()) throw new OutputLocationError(`${folder} is not a folder`);
  probe(folder, `results file ${file}`);
  return file;
}

/**
 * The default location: ./results in `cwd`, created now if it is missing (the one folder rtp-bench makes), and
 * checked like any other. Returns the folder.
 */
export function prepareDefaultResultsFolder(cwd = process.cwd()): string {
  const folder = join(cwd, DEFAULT_RESULTS_FOLDER);
  const stats = statOrNull(folder);
  if (stats !== null && !stats.isDirectory()) {
    throw new OutputLocationError(`results go to ${folder} by default, but that is a file, not a folder: give --output FILE`);
  }
  if (stats === null) {
    try {
      mkdirSync(folder);
    } catch (err) {
      throw new OutputLocationError(`results go to ./${DEFAULT_RESULTS_FOLDER}/ in the current folder ${cwd}, which cannot be created: ${errnoText(err)}; run from a folder you can write to, or give --output FILE`);
    }
  }
  try {
    probe(folder, `results go to ./${DEFAULT_RESULTS_FOLDER}/ in the current folder ${cwd}`);
  } catch (err) {
    if (stats === null) rmSync(folder, { recursive: false, force: true });
    throw new OutputLocationError(`${(err as Error).message}; run from a folder you can write to, or give --output FILE`);
  }
  return folder;
}

/** Writes `text` to `path` through a unique temporary file opened exclusively in the same folder, then a rename. */
export async function writeFileAtomically(path: string, text: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', 0o644);
  try {
    await handle.writeFile(text);
    await handle.close();
    await rename(tmp, path);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

export interface WrittenFiles {
  /** Where each file went (the fallback folder when the asked-for one failed). */
  paths: string[];
  /** Set when the asked-for location failed: why, in words. */
  fallbackReason: string | null;
}

/**
 * Writes every file; if any cannot be written where asked, all of them go to a new folder under the system's
 * temporary directory instead (a run's files stay together). Throws only when that fails too.
 */
export async function writeRunFiles(files: readonly { path: string; text: string }[]): Promise<WrittenFiles> {
  try {
    for (const f of files) await writeFileAtomically(f.path, f.text);
    return { paths: files.map((f) => f.path), fallbackReason: null };
  } catch (err) {
    const reason = `could not write ${files.map((f) => f.path).join(' and ')}: ${errnoText(err)}`;
    const folder = await mkdtemp(join(tmpdir(), 'rtp-bench-results-'));
    const paths: string[] = [];
    for (const f of files) {
      const path = join(folder, basename(f.path));
      await writeFileAtomically(path, f.text);
      paths.push(path);
    }
    return { paths, fallbackReason: reason };
  }
}
