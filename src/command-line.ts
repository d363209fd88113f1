/**
 * The rtp-bench command line: yargs turns argv into CliOptions, plan.ts turns those into a RunPlan. yargs is kept on
 * a short leash: it never prints an error or exits by itself; every failure, its own included, becomes a PlanError
 * with one line, so a bad command line always ends the same way (exit 2) before anything has started.
 */
import yargs, { type Argv } from 'yargs';
import { packageVersion } from './paths.js';
import { PlanError, buildPlan, flagFor, type CliOptionName, type CliOptions, type Command } from './plan.js';
import { type CleanupRequest, type RunPlan } from './run-plan.js';
import { quoteValue } from './units.js';
import { join, resolve } from 'node:path';
import { checkOutputFile, OutputLocationError, prepareDefaultResultsFolder } from './report/output.js';
import type { MergeRequest } from './commands/merge.js';
import { closestName } from './closest.js';
import { buildCapacityPlan, buildScalePlan, type CapacityPlan, type ScalePlan } from './capacity/plan.js';
import { CAPACITY_KEYS, COMMANDS, EPILOGUE, EXAMPLES, NOT_CAPACITY_KEYS, OPTION_KEYS, OPTIONS, REPEATABLE, RTPENGINE_KEYS, SCALE_KEYS, isSwitch } from './options.js';

/**
 * Thrown by parseCommandLine for --help and --version: not a failure, but there is no plan to run either.
 * The caller prints `text` on stdout and exits 0 (commander's exitOverride does the same).
 */
export class InfoRequested extends Error {
  override readonly name = 'InfoRequested';

  constructor(readonly text: string) {
    super('help or version requested');
  }
}

/**
 * calibrate accepts the rtpengine flags but hides them: plan.ts then says why they do not apply, which is more
 * useful than yargs' "unknown argument".
 */
function withOptions(y: Argv, hidden: readonly CliOptionName[]): Argv {
  let out = y;
  for (const key of OPTION_KEYS) {
    const spec = OPTIONS[key];
    const isHidden = hidden.includes(key);
    out = out.option(flagFor(key), {
      type: isSwitch(spec) ? 'boolean' : 'string',
      requiresArg: !isSwitch(spec) && spec.optionalValue !== true,
      describe: spec.defaultText === undefined ? spec.describe : `${spec.describe} (default: ${spec.defaultText})`,
      group: isHidden ? undefined : spec.group,
      hidden: isHidden,
    });
  }
  return out;
}

/** yargs has had usageConfiguration since 17.7, but @types/yargs 17.0.x does not declare it. */
type WithUsageConfiguration = Argv & { usageConfiguration(config: { 'hide-types'?: boolean }): Argv };

/** What the command line asks for: a run (or calibration) with its plan, or a report on results files. */
export type Invocation =
  | { command: Command; plan: RunPlan }
  | { command: 'capacity'; plan: RunPlan; capacity: CapacityPlan }
  | { command: 'scale'; scale: ScalePlan }
  | { command: 'report'; files: string[]; html: string | undefined }
  | { command: 'cleanup'; request: CleanupRequest }
  | { command: 'merge'; request: MergeRequest };

function parser(args: readonly string[], onCommand: (command: Command | 'capacity' | 'scale' | 'report' | 'cleanup' | 'merge') => void): Argv {
  const width = Math.min(110, process.stdout.columns || 110);
  // Every flag's value is text that plan.ts parses, so yargs' [string] tags would say nothing; defaults are
  // spelled out in each description instead (hide-types hides yargs' [default:] along with the type).
  return (yargs() as WithUsageConfiguration)
    .usageConfiguration({ 'hide-types': true })
    .scriptName('rtp-bench')
    .locale('en') // the failure handler reads yargs' messages, so they must not be translated
    .parserConfiguration({
      'boolean-negation': false,
      'dot-notation': false,
      'duplicate-arguments-array': true,
      'parse-positional-numbers': false,
    })
    .command(
      '$0',
      'Place --calls concurrent calls through rtpengine with real audio both ways, hold them, report',
      (y) => withOptions(y, [...CAPACITY_KEYS, ...SCALE_KEYS]),
      () => onCommand('run'),
    )
    .command(
      'calibrate',
      'Measure the generator alone: the same load, legs sending straight to each other, no rtpengine',
      (y) => withOptions(y, [...RTPENGINE_KEYS, ...CAPACITY_KEYS, ...SCALE_KEYS]),
      () => onCommand('calibrate'),
    )
    .command(
      'capacity',
      'Find the most concurrent calls that meet an SLO: steps of calls held on a running population, grown then bisected',
      (y) => withOptions(y, [...NOT_CAPACITY_KEYS, ...SCALE_KEYS]),
      () => onCommand('capacity'),
    )
    .command(
      'scale',
      'Does adding rtpengine workers scale it? The capacity search per --workers count (e.g. 1,2,4; started here, or the worker StatefulSet scaled with --mesh kubernetes), with efficiency',
      (y) => withOptions(y, [...NOT_CAPACITY_KEYS, 'rtpengine']),
      () => onCommand('scale'),
    )
    .command(
      'report [files..]',
      'Compare results files of one kind (runs, capacity searches or scale runs) in a table, marking better/worse, and with --html write a page with their charts',
      (y) =>
        y
          .positional('files', { describe: 'Results files written by run, capacity or scale (results/<run id>.json), all of one kind', type: 'string' })
          .option('html', { type: 'string', requiresArg: true, describe: 'Also write a self-contained HTML page with charts to this file' }),
      () => onCommand('report'),
    )
    .command(
      'merge [files..]',
      'Merge the results files of the shards of one plan (--shard I/N) into one run: counts summed, histograms merged, percentiles read from them',
      (y) =>
        y
          .positional('files', { describe: "Each shard's results file (results/<run id>-s<I>.json)", type: 'string' })
          .option('output', { type: 'string', requiresArg: true, describe: 'The merged results file (default: results/<run id>.json); its HTML page goes next to it' })
          .option('allow-partial', { type: 'boolean', describe: 'Merge even when shards are missing (with a warning), instead of refusing' })
          .option('csv', { type: 'string', requiresArg: true, describe: 'Also write the merged timeline as CSV' })
          .option('calls-csv', { type: 'string', requiresArg: true, describe: 'Also write one row per call as CSV' })
          .option('hgrm', { type: 'string', requiresArg: true, describe: 'Also write each merged histogram as HdrHistogram percentile distribution text into this folder' }),
      () => onCommand('merge'),
    )
    .command(
      'cleanup',
      "Remove what a crashed run left: its l7mp objects (--mesh kubernetes or rest) or its network namespaces (--mesh local)",
      (y) =>
        y
          .option('mesh', { type: 'string', requiresArg: true, describe: 'kubernetes, rest or local (required)' })
          .option('run', { type: 'string', requiresArg: true, describe: 'Only this run (its id, as in results/<run id>.json); default: every run' })
          .option('namespace', { type: 'string', requiresArg: true, describe: 'Kubernetes namespace (default: the context\'s, else default)' })
          .option('kubeconfig', { type: 'string', requiresArg: true, describe: 'kubeconfig file' })
          .option('context', { type: 'string', requiresArg: true, describe: 'kubeconfig context' })
          .option('mesh-config', { type: 'string', requiresArg: true, describe: 'For --mesh rest: the proxies, as for a run' }),
      () => onCommand('cleanup'),
    )
    .example(EXAMPLES.flatMap(([what, line]) => [[`# ${what}`, ''], [line, '']]))
    .epilogue(EPILOGUE)
    .help()
    .alias('help', 'h')
    .version(packageVersion())
    .strict()
    .showHelpOnFail(false)
    .exitProcess(false)
    .wrap(width)
    .fail((message: string | undefined, error: Error | undefined) => {
      if (error instanceof PlanError) throw error;
      throw new PlanError(explainYargsFailure(message ?? error?.message ?? 'invalid command line', args));
    });
}

function knownFlags(): string[] {
  return [...OPTION_KEYS.map(flagFor), 'help', 'version'];
}

function beforeDoubleDash(args: readonly string[]): readonly string[] {
  const end = args.indexOf('--');
  return end < 0 ? args : args.slice(0, end);
}

function explainYargsFailure(message: string, args: readonly string[]): string {
  const tokens = beforeDoubleDash(args);
  const unknown = /^Unknown arguments?: (.+)$/s.exec(message);
  if (unknown) {
    const names = (unknown[1] ?? '').split(', ');
    // yargs lists both spellings of an unknown kebab-case flag (no-json, noJson); report the first as typed.
    for (const token of tokens) {
      if (token.startsWith('-')) {
        const name = token.replace(/^-+/, '').split('=')[0] ?? '';
        if (!names.includes(name)) continue;
        const typed = token.split('=')[0] ?? token;
        const guess = closestName(name, knownFlags());
        if (guess === name) return `${typed} does not apply to report: it takes results files and --html`;
        return `unknown option ${typed}${guess === undefined ? '' : `: did you mean --${guess}?`}`;
      }
      if (names.includes(token)) {
        const guess = closestName(token, COMMANDS);
        const hint = COMMANDS.includes(token)
          ? `${token} is a command, given once before the flags`
          : /^\d+$/.test(token)
            ? `did you mean --calls ${token}?`
            : guess === undefined
              ? 'rtp-bench takes flags after its command (calibrate, capacity, report, cleanup, or none)'
              : `did you mean ${guess}?`;
        return `unexpected argument ${token}: ${hint}`;
      }
    }
    return `unknown option --${names[0] ?? ''}`;
  }
  const noValue = /^Not enough arguments following: (.+)$/s.exec(message);
  if (noValue) {
    const flag = noValue[1] ?? '';
    const key = OPTION_KEYS.find((k) => flagFor(k) === flag || k === flag);
    const spec = key === undefined ? undefined : OPTIONS[key];
    const at = tokens.findIndex((token) => token === `--${flag}`);
    const next = at < 0 ? undefined : tokens[at + 1];
    const looksLikeFlag = next !== undefined && next.startsWith('-') ? ` (${next} looks like a flag: write --${flag}=${next} if it is the value)` : '';
    return `--${flag} needs a value${spec?.value === undefined ? '' : `: expected ${spec.value}`}${looksLikeFlag}`;
  }
  return message.replace(/\s*\n\s*/g, ' ');
}

function readOptions(argv: Record<string, unknown>, args: readonly string[]): CliOptions {
  const options: Partial<Record<CliOptionName, string | boolean>> = {};
  for (const key of OPTION_KEYS) {
    const value = argv[key];
    if (value === undefined) continue;
    const flag = flagFor(key);
    if (isSwitch(OPTIONS[key])) {
      // yargs reads --json=yes as false without a word; a switch takes no value other than true or false.
      const typed = beforeDoubleDash(args).find((token) => token.startsWith(`--${flag}=`) && !/^--[^=]+=(true|false)$/.test(token));
      if (typed !== undefined) throw new PlanError(`--${flag} takes no value but was given ${typed}: write --${flag} alone`);
      options[key] = value === true;
      continue;
    }
    let text: string;
    if (Array.isArray(value)) {
      const values = value.map(String);
      if (!REPEATABLE.includes(key)) {
        const times = values.length === 2 ? 'twice' : `${values.length} times`;
        throw new PlanError(`--${flag} is given ${times} (${values.map((v) => (v === '' ? 'no value' : v)).join(', ')}): give it once`);
      }
      text = values.join(',');
    } else {
      text = String(value);
    }
    options[key] = text;
  }
  // The switch/value split above follows OPTIONS, which is keyed by CliOptions, so each key got its own type.
  return options as CliOptions;
}

/**
 * argv without node and the script (hideBin(process.argv)) -> the command and its validated plan.
 * Throws PlanError for any bad input, yargs' own failures included, and InfoRequested for --help and --version.
 */
export function parseCommandLine(argv: string[]): { command: Command; plan: RunPlan } {
  const invocation = parseInvocation(argv);
  if (invocation.command !== 'run' && invocation.command !== 'calibrate') throw new PlanError(`${invocation.command} is not a single run: use parseInvocation`);
  return invocation;
}

/** parseCommandLine for every command, report included. */
export function parseInvocation(argv: string[]): Invocation {
  let command: Command | 'capacity' | 'scale' | 'report' | 'cleanup' | 'merge' | undefined;
  let output = '';
  const parsed = parser(argv, (chosen) => {
    command = chosen;
  }).parseSync(argv, {}, (_error, _argv, text) => {
    output = text;
  }) as Record<string, unknown>;
  if (output !== '') throw new InfoRequested(output);
  // yargs runs the $0 handler for an empty command line too; no command without help output is a yargs change.
  if (command === undefined) throw new Error('rtp-bench: yargs chose no command and printed nothing');
  if (command === 'report') return reportInvocation(parsed);
  if (command === 'cleanup') return { command, request: cleanupRequest(parsed) };
  if (command === 'merge') return { command, request: mergeRequest(parsed) };
  const chosen = command;
  // strict mode does not look past "--", and rtp-bench has no place for a positional argument there either.
  const positionals = (Array.isArray(parsed['_']) ? parsed['_'] : []).map(String);
  const extra = chosen === 'run' ? positionals : positionals.slice(1);
  if (extra[0] !== undefined) {
    throw new PlanError(`unexpected argument ${quoteValue(extra[0])}: rtp-bench takes flags after its command (calibrate, capacity, report, cleanup, or none)`);
  }
  const options = readOptions(parsed, argv);
  if (chosen === 'capacity') return { command: chosen, ...buildCapacityPlan(options) };
  if (chosen === 'scale') return { command: chosen, scale: buildScalePlan(options) };
  return { command: chosen, plan: buildPlan(chosen, options) };
}

function reportInvocation(parsed: Record<string, unknown>): Invocation {
  const files = (Array.isArray(parsed['files']) ? parsed['files'] : [parsed['files']]).filter((f) => f !== undefined).map(String);
  if (files.length === 0) throw new PlanError('report needs at least one results file: e.g. rtp-bench report results/<run id>.json');
  const html = parsed['html'];
  if (Array.isArray(html)) throw new PlanError(`--html is given ${html.length === 2 ? 'twice' : `${html.length} times`} (${html.join(', ')}): give it once`);
  if (html === '') throw new PlanError('--html needs a value: expected a file name for the page, e.g. compare.html');
  return { command: 'report', files, html: html === undefined ? undefined : String(html) };
}

/** `merge`'s files and flags; where it writes is tried now, as for a run, so that a bad path fails before the work. */
function mergeRequest(parsed: Record<string, unknown>): MergeRequest {
  const files = (Array.isArray(parsed['files']) ? parsed['files'] : [parsed['files']]).filter((f) => f !== undefined).map(String);
  if (files.length === 0) throw new PlanError('merge needs the results files of the shards: e.g. rtp-bench merge results/RUN-s1.json results/RUN-s2.json --output merged.json');
  const one = (key: string): string | null => {
    const v = parsed[key];
    if (Array.isArray(v)) throw new PlanError(`--${key} is given ${v.length === 2 ? 'twice' : `${v.length} times`} (${v.join(', ')}): give it once`);
    if (v === '') throw new PlanError(`--${key} needs a value`);
    return v === undefined ? null : String(v);
  };
  const file = (key: string): string | null => {
    const v = one(key);
    if (v === null) return null;
    try {
      return checkOutputFile(v);
    } catch (err) {
      if (!(err instanceof OutputLocationError)) throw err;
      throw new PlanError(`--${key} ${quoteValue(v)}: ${err.message}`);
    }
  };
  const hgrm = one('hgrm');
  if (hgrm !== null) folderIn(hgrm);
  const output = file('output');
  if (output === null) {
    try {
      prepareDefaultResultsFolder();
    } catch (err) {
      if (!(err instanceof OutputLocationError)) throw err;
      throw new PlanError(err.message);
    }
  }
  return { files, output, allowPartial: parsed['allow-partial'] === true, csv: file('csv'), callsCsv: file('calls-csv'), hgrm: hgrm === null ? null : resolve(hgrm) };

  function folderIn(folder: string): void {
    try {
      checkOutputFile(join(folder, 'probe.hgrm'));
    } catch (err) {
      if (!(err instanceof OutputLocationError)) throw err;
      throw new PlanError(`--hgrm ${quoteValue(folder)}: ${err.message}`);
    }
  }
}

function cleanupRequest(parsed: Record<string, unknown>): CleanupRequest {
  const one = (key: string): string | null => {
    const v = parsed[key];
    if (Array.isArray(v)) throw new PlanError(`--${key} is given ${v.length} times: give it once`);
    return v === undefined ? null : String(v);
  };
  const given = one('mesh');
  if (given === null) {
    throw new PlanError(
      'cleanup removes what a crashed run left; say where: --mesh local (network namespaces, proxies and rtpengine of a --mesh local run), ' +
        '--mesh rest --mesh-config FILE (objects on running l7mp proxies), or --mesh kubernetes [--namespace NS] (l7mp.io objects in the cluster); add --run ID for one run',
    );
  }
  const mesh = given;
  if (mesh !== 'kubernetes' && mesh !== 'rest' && mesh !== 'local') {
    throw new PlanError(`--mesh ${quoteValue(mesh)} is not a mesh cleanup knows: expected kubernetes, rest or local`);
  }
  const request: CleanupRequest = { mesh, runId: one('run'), namespace: one('namespace'), kubeconfig: one('kubeconfig'), context: one('context'), meshConfig: one('mesh-config') };
  if (mesh === 'rest' && request.meshConfig === null) throw new PlanError('cleanup --mesh rest needs --mesh-config FILE: the proxies to clean');
  if (mesh !== 'kubernetes') {
    const stray = (['namespace', 'kubeconfig', 'context'] as const).find((k) => request[k] !== null);
    if (stray !== undefined) throw new PlanError(`--${stray} only applies to cleanup --mesh kubernetes`);
  }
  if (mesh !== 'rest' && request.meshConfig !== null) throw new PlanError('--mesh-config only applies to cleanup --mesh rest');
  return request;
}
