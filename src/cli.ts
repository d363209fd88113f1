#!/usr/bin/env node
/**
 * The rtp-bench command line: yargs turns argv into CliOptions, plan.ts turns those into a RunPlan. yargs is kept on
 * a short leash: it never prints an error or exits by itself; every failure, its own included, becomes a PlanError
 * with one line, so a bad command line always ends the same way (exit 2) before anything has started.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { packageVersion } from './paths.js';
import {
  DEFAULTS,
  LIMITS,
  PlanError,
  buildPlan,
  flagFor,
  type CliOptionName,
  type CliOptions,
  type Command,
} from './plan.js';
import { INTERNAL_PLAN_FLAG, type CleanupRequest, type InternalPlan, type RunPlan } from './run-plan.js';
import { quoteValue } from './units.js';
import { closestName } from './closest.js';
import { buildCapacityPlan, buildScalePlan, CAPACITY_DEFAULTS, type CapacityPlan, type ScalePlan } from './capacity/plan.js';
import { DEFAULT_SLO_TEXT } from './capacity/slo.js';

export { closestName } from './closest.js';

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

interface OptionSpec {
  group: string;
  /** One line for --help; says what the value looks like. */
  describe: string;
  /** What the value looks like, for "--calls needs a value"; absent for switches. */
  value?: string;
  /** Appended to the help line as (default: ...). */
  defaultText?: string;
}

const LOAD = 'Load:';
const RTPENGINE = 'rtpengine (default: rtp-bench starts one on loopback):';
const MEDIA = 'Media:';
const OUTPUT = 'Output:';
const SLOS = 'SLOs (any one missed: exit 1):';
const CONTROL = 'Control plane:';
const MESH = 'Mesh (l7mp; default: none, media straight to rtpengine):';
const CAPACITY = 'Capacity search (rtp-bench capacity):';

/** Every CliOptions key has exactly one entry, so yargs, --help and plan.ts cannot drift apart. */
const OPTIONS: Record<CliOptionName, OptionSpec> = {
  calls: {
    group: LOAD,
    value: `N, a whole number from ${LIMITS.calls.min} to ${LIMITS.calls.max}`,
    describe: `Concurrent calls to reach and hold, ${LIMITS.calls.min}-${LIMITS.calls.max} (required)`,
  },
  ramp: {
    group: LOAD,
    value: 'a rate like 10/s, 600/min or 10',
    describe: 'New calls per second until all are up: 10/s, 600/min, 10',
    defaultText: DEFAULTS.ramp,
  },
  hold: {
    group: LOAD,
    value: 'a duration like 20s, 2m or 1m30s',
    describe: 'How long all calls stay up after the last one arrived: 20s, 2m, 1m30s, 0',
    defaultText: DEFAULTS.hold,
  },
  codecPair: {
    group: LOAD,
    value: "A:B, leg A's codec : leg B's codec, e.g. opus:pcmu",
    describe: "A:B, leg A's codec : leg B's codec (pcmu, pcma, opus); different codecs make rtpengine transcode",
    defaultText: DEFAULTS.codecPair,
  },
  rtpengine: {
    group: RTPENGINE,
    value: 'HOST:PORT[,HOST:PORT...], e.g. 127.0.0.1:22222',
    describe: 'HOST:PORT[,HOST:PORT...]: ng addresses of rtpengine instances already running, used instead',
  },
  workers: {
    group: RTPENGINE,
    value: `N, a whole number from ${LIMITS.workers.min} to ${LIMITS.workers.max}`,
    describe: `rtpengine instances to start, ${LIMITS.workers.min}-${LIMITS.workers.max}`,
    defaultText: DEFAULTS.workers,
  },
  rtpenginePorts: {
    group: RTPENGINE,
    value: 'LO-HI, e.g. 30000-39999',
    describe: 'LO-HI: media ports of the started rtpengine, LO even',
    defaultText: 'sized for --calls',
  },
  rtpengineBin: {
    group: RTPENGINE,
    value: 'the rtpengine daemon, a name on PATH or a path',
    describe: 'rtpengine daemon to start, a name on PATH or a path',
    defaultText: DEFAULTS.rtpengineBin,
  },
  rtpengineLogLevel: {
    group: RTPENGINE,
    value: 'a syslog level from 0 to 7',
    describe: 'Log level of the started rtpengine, 0-7',
    defaultText: DEFAULTS.rtpengineLogLevel,
  },
  workerCpu: {
    group: RTPENGINE,
    value: 'cores, e.g. 0.5',
    describe: 'Cap each started rtpengine at this much CPU (a cgroup of its own; root), so that scaling shows on a small machine',
  },
  workerThreads: {
    group: RTPENGINE,
    value: 'N, a whole number from 1 to 64',
    describe: "Each started rtpengine's --num-threads (its poller threads)",
    defaultText: "rtpengine's own: max(cores, 4)",
  },
  threads: {
    group: MEDIA,
    value: `N, a whole number from ${LIMITS.threads.min} to ${LIMITS.threads.max}`,
    describe: `Media worker threads, ${LIMITS.threads.min}-${LIMITS.threads.max}`,
    defaultText: 'one per 200 calls, at most one per core',
  },
  localIp: {
    group: MEDIA,
    value: 'an address of this machine, e.g. 127.0.0.1',
    describe: 'Address the clients bind and put in their SDP: 127.x.x.x or an address of this machine',
    defaultText: DEFAULTS.localIp,
  },
  localPorts: {
    group: MEDIA,
    value: 'LO-HI, e.g. 20000-29999',
    describe: 'LO-HI: client ports, 4 per call, LO even',
    defaultText: DEFAULTS.localPorts,
  },
  rtcp: {
    group: MEDIA,
    value: 'on, off or generate',
    describe: 'on: clients send RTCP SR/RR; off: no RTCP; generate: rtpengine also makes its own',
    defaultText: DEFAULTS.rtcp,
  },
  audioCheckShare: {
    group: MEDIA,
    value: 'a share from 0 to 1, e.g. 0.2',
    describe: 'Share of opus-receiving streams whose audio is decoded and checked, 0-1 (G.711: all)',
    defaultText: DEFAULTS.audioCheckShare,
  },
  output: {
    group: OUTPUT,
    value: 'a file name, e.g. results/run.json',
    describe: 'Results file',
    defaultText: 'results/<run id>.json',
  },
  csv: { group: OUTPUT, value: 'a file name, e.g. run.csv', describe: 'Also write the timeline (one row a second: calls, packets, loss, latency, each worker) as CSV' },
  json: { group: OUTPUT, describe: 'Print the summary as JSON on stdout instead of the table' },
  progress: {
    group: OUTPUT,
    value: 'auto, on or off',
    describe: 'Live progress on stderr: auto|on|off; auto: only when stderr is a terminal',
    defaultText: DEFAULTS.progress,
  },
  quiet: { group: OUTPUT, describe: 'No live progress (same as --progress off)' },
  maxLoss: { group: SLOS, value: 'a percentage, e.g. 0.5 or 0.5%', describe: 'Packet loss over all streams, percent: 0.5 or 0.5%' },
  maxJitter: { group: SLOS, value: 'milliseconds, e.g. 30', describe: 'p99 RFC 3550 jitter, ms' },
  maxLatency: { group: SLOS, value: 'milliseconds, e.g. 50', describe: 'p99 one-way latency, ms' },
  maxSetup: { group: SLOS, value: 'milliseconds, e.g. 200', describe: 'p99 call setup (offer + answer), ms' },
  minMos: { group: SLOS, value: 'a MOS from 1 to 4.5, e.g. 4', describe: 'Lowest acceptable median E-model MOS, 1-4.5' },
  maxFailed: { group: SLOS, value: 'a percentage, e.g. 1 or 1%', describe: 'Failed calls, percent of attempted' },
  ngTimeout: {
    group: CONTROL,
    value: 'a duration like 5s',
    describe: 'Timeout of one ng request, retransmissions included',
    defaultText: DEFAULTS.ngTimeout,
  },
  ngInFlight: {
    group: CONTROL,
    value: 'N, a whole number from 1 to 10000',
    describe: 'Most ng requests in flight at once',
    defaultText: DEFAULTS.ngInFlight,
  },
  io: {
    group: MEDIA,
    value: 'auto, native or dgram',
    describe: 'How media threads move packets: native (io_uring/epoll addon, ~3x cheaper) or Node dgram; auto: native if built',
    defaultText: DEFAULTS.io,
  },
  mediaPriority: {
    group: MEDIA,
    value: 'auto, realtime or normal',
    describe:
      'Scheduling of the media threads: realtime (SCHED_FIFO, root or CAP_SYS_NICE; native I/O) keeps send lateness low; ' +
      'auto: realtime unless rtpengine or the mesh runs on this machine',
    defaultText: DEFAULTS.mediaPriority,
  },
  headStart: {
    group: MEDIA,
    value: 'LEG=DURATION, e.g. b=300ms',
    describe: 'One leg starts sending this long before the other, e.g. b=300ms (the callee sends first)',
  },
  mesh: {
    group: MESH,
    value: 'none, local, rest or kubernetes',
    describe: 'local: a real l7mp mesh in network namespaces (root); rest: running proxies (--mesh-config); kubernetes: l7mp.io custom resources',
    defaultText: DEFAULTS.mesh,
  },
  meshConfig: { group: MESH, value: 'a JSON file', describe: 'For --mesh rest: the running proxies (ingress and workers), see src/mesh/config.ts' },
  meshObjects: {
    group: MESH,
    value: 'classic or compact',
    describe: "Per call: classic = the suite's 12 objects; compact = 8 (Target inlined)",
    defaultText: 'compact; classic with kubernetes',
  },
  listenerMode: {
    group: MESH,
    value: 'singleton or server',
    describe: 'Ingress UDP listeners: singleton (no start-of-call loss) or server (the old behaviour)',
    defaultText: DEFAULTS.listenerMode,
  },
  meshRetryTimeout: {
    group: MESH,
    value: 'a duration like 250ms',
    describe: 'Route retry timeout (also the JSONSocket reply timeout)',
    defaultText: DEFAULTS.meshRetryTimeout,
  },
  meshNaming: {
    group: MESH,
    value: 'operator or selflink',
    describe: 'Object names on the proxies: current operator form, or the pre-2021 selfLink form',
    defaultText: DEFAULTS.meshNaming,
  },
  namespace: { group: MESH, value: 'a namespace name', describe: 'Kubernetes namespace of the l7mp objects and pods', defaultText: DEFAULTS.namespace },
  kubeconfig: { group: MESH, value: 'a file', describe: 'kubeconfig file', defaultText: 'KUBECONFIG, ~/.kube/config, or in-cluster' },
  context: { group: MESH, value: 'a context name', describe: 'kubeconfig context', defaultText: 'the current one' },
  meshConcurrency: {
    group: MESH,
    value: 'N, a whole number from 1 to 1000',
    describe: 'Kubernetes API requests in flight at most',
    defaultText: DEFAULTS.meshConcurrency,
  },
  meshRate: { group: MESH, value: 'a rate like 50/s', describe: 'Kubernetes API requests per second at most', defaultText: DEFAULTS.meshRate },
  slo: {
    group: CAPACITY,
    value: "terms like 'latency.p99<60ms,loss<0.1%,mos.p50>=4'",
    describe: 'The SLO a step must meet: METRIC OP VALUE terms, comma-separated (metrics: latency, audioDelay, jitter, transitJitter, setup, mos .p50/.p99/...; loss; failed)',
    defaultText: DEFAULT_SLO_TEXT,
  },
  start: { group: CAPACITY, value: 'N calls', describe: 'Calls of the first step', defaultText: 'min(10, --max)' },
  max: { group: CAPACITY, value: 'N calls', describe: 'Most calls a step may hold (also sizes threads and ports)', defaultText: CAPACITY_DEFAULTS.max },
  stepHold: { group: CAPACITY, value: 'a duration like 20s', describe: 'How long each step is measured once its calls are up', defaultText: CAPACITY_DEFAULTS.stepHold },
  resolution: { group: CAPACITY, value: 'N calls or N%', describe: 'Stop bisecting when the answer is this close', defaultText: CAPACITY_DEFAULTS.resolution },
  meshMediaAddress: {
    group: MESH,
    value: 'an IPv4 address',
    describe: 'Kubernetes: where clients send media (the ingress gateway)',
    defaultText: "the ingress pod's address",
  },
};

const OPTION_KEYS = Object.keys(OPTIONS) as CliOptionName[];
const RTPENGINE_KEYS: readonly CliOptionName[] = ['rtpengine', 'workers', 'rtpenginePorts', 'rtpengineBin', 'rtpengineLogLevel', 'workerCpu', 'workerThreads', 'mesh', 'meshConfig', 'meshObjects', 'listenerMode', 'meshRetryTimeout', 'meshNaming', 'namespace', 'kubeconfig', 'context', 'meshConcurrency', 'meshRate', 'meshMediaAddress'];
/** Repeating it adds instances, like commas do; any other value flag given twice is a mistake. */
const REPEATABLE: readonly CliOptionName[] = ['rtpengine'];
const COMMANDS = ['calibrate', 'capacity', 'scale', 'report', 'cleanup'];
/** Flags of the capacity command alone, hidden elsewhere (plan.ts says why they do not apply). */
const CAPACITY_KEYS: readonly CliOptionName[] = ['slo', 'start', 'max', 'stepHold', 'resolution'];
/** Run flags a capacity search sets itself (hidden there; src/capacity/plan.ts says what to use instead). */
const NOT_CAPACITY_KEYS: readonly CliOptionName[] = ['calls', 'hold', 'maxLoss', 'maxJitter', 'maxLatency', 'maxSetup', 'minMos', 'maxFailed'];

/**
 * Shown as a comment line above each command (as kubectl does): yargs' two-column examples give the command only
 * half the width, which breaks every realistic command line over two or three lines.
 */
const EXAMPLES: ReadonlyArray<readonly [string, string]> = [
  ['The main job: 50 calls, opus on leg A and PCMU on leg B, transcoded by a local rtpengine', '$0 --calls 50 --ramp 10/s --hold 20s --codec-pair opus:pcmu'],
  ['Against two rtpengine instances that are already running', '$0 --calls 2000 --ramp 100/s --hold 5m --rtpengine 10.0.0.5:2223,10.0.0.6:2223 --local-ip 10.0.0.4'],
  ['Four local rtpengine instances, with SLOs (exit 1 if one is missed) and a JSON summary', '$0 --calls 500 --workers 4 --max-loss 0.1% --min-mos 4 --json'],
  ["Calibration: what the generator sustains alone, to tell its limits from rtpengine's", '$0 calibrate --calls 2000 --codec-pair opus:opus --hold 1m'],
  ['Compare two runs (e.g. 1 vs 2 workers) side by side, and write an HTML page with their charts', '$0 report results/RUN1.json results/RUN2.json --html compare.html'],
  ['Through a real l7mp mesh built locally (network namespaces, needs root): ingress, 2 workers', '$0 --mesh local --workers 2 --calls 20 --ramp 5/s --hold 15s --codec-pair opus:pcmu'],
];

const EPILOGUE = [
  'Durations: 500ms, 20s, 2m, 1h, 1m30s. Rates: 10/s, 600/min, 10 (per second).',
  'The embedded rtpengine gets loopback addresses of its own (127.R.S.1, .2, ... per --workers, random per run), ng on a free',
  'port, media on 10000-19999; clients use 127.0.0.1:20000-29999 (moved up when another run holds them).',
  'Results: ./results/<run id>.json and .html in the current folder unless --output.',
  'Exit codes: 0 done; 1 an SLO missed, or a call failed (--max-failed to allow some), or none succeeded; 2 bad command line;',
  '3 the run could not start (or its results could not be written anywhere); 4 the generator limited the run (its figures',
  'are not the system\'s: see the verdict); 130 interrupted (partial results written).',
].join('\n');

function isSwitch(spec: OptionSpec): boolean {
  return spec.value === undefined;
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
      requiresArg: !isSwitch(spec),
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
  | { command: 'cleanup'; request: CleanupRequest };

function parser(args: readonly string[], onCommand: (command: Command | 'capacity' | 'scale' | 'report' | 'cleanup') => void): Argv {
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
      (y) => withOptions(y, CAPACITY_KEYS),
      () => onCommand('run'),
    )
    .command(
      'calibrate',
      'Measure the generator alone: the same load, legs sending straight to each other, no rtpengine',
      (y) => withOptions(y, [...RTPENGINE_KEYS, ...CAPACITY_KEYS]),
      () => onCommand('calibrate'),
    )
    .command(
      'capacity',
      'Find the most concurrent calls that meet an SLO: steps of calls held on a running population, grown then bisected',
      (y) => withOptions(y, NOT_CAPACITY_KEYS),
      () => onCommand('capacity'),
    )
    .command(
      'scale',
      'Does adding rtpengine workers scale it? The capacity search per --workers count (e.g. 1,2,4), with efficiency',
      (y) => withOptions(y, [...NOT_CAPACITY_KEYS, 'rtpengine', 'mesh']),
      () => onCommand('scale'),
    )
    .command(
      'report [files..]',
      'Compare results files in a table (run2/run1 for two), and with --html write a page with their charts',
      (y) =>
        y
          .positional('files', { describe: 'Results files written by runs (results/<run id>.json)', type: 'string' })
          .option('html', { type: 'string', requiresArg: true, describe: 'Also write a self-contained HTML page with charts to this file' }),
      () => onCommand('report'),
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
        throw new PlanError(`--${flag} is given ${times} (${values.join(', ')}): give it once`);
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
  let command: Command | 'capacity' | 'scale' | 'report' | 'cleanup' | undefined;
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

export async function main(argv: string[] = hideBin(process.argv)): Promise<void> {
  // The benchmark half of --mesh local, started by rtp-bench itself inside the client namespace with a plan that was
  // validated before the mesh was built (src/mesh/local-run.ts). Not a user flag.
  if (argv[0] === INTERNAL_PLAN_FLAG && argv[1] !== undefined) {
    const internal = JSON.parse(readFileSync(argv[1], 'utf8')) as InternalPlan;
    const { run } = await import('./coordinator.js');
    process.exitCode = await run(internal.plan, undefined, internal.runId);
    return;
  }
  let invocation: Invocation;
  try {
    invocation = parseInvocation(argv);
  } catch (err) {
    if (err instanceof InfoRequested) {
      process.stdout.write(err.text.endsWith('\n') ? err.text : `${err.text}\n`);
      return;
    }
    if (err instanceof PlanError) {
      process.stderr.write(`rtp-bench: ${err.message}\nRun rtp-bench --help for the flags and examples.\n`);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
  if (invocation.command === 'report') {
    const { runReport } = await import('./report/compare.js');
    process.exitCode = await runReport(invocation.files, invocation.html);
    return;
  }
  if (invocation.command === 'cleanup') {
    const { runCleanup } = await import('./mesh/cleanup.js');
    process.exitCode = await runCleanup(invocation.request);
    return;
  }
  if (invocation.command === 'scale') {
    const { runScale } = await import('./commands/scale.js');
    process.exitCode = await runScale(invocation.scale);
    return;
  }
  if (invocation.command === 'capacity') {
    const { runCapacity } = await import('./commands/capacity.js');
    process.exitCode = await runCapacity(invocation.plan, invocation.capacity);
    return;
  }
  // Loaded only now: the coordinator pulls in piscina, the Kubernetes client and the rest, none of which --help or a
  // rejected command line should pay for or be able to break.
  const { run } = await import('./coordinator.js');
  process.exitCode = await run(invocation.plan);
}

/** npx and npm's bin links reach this file through a symlink, and import.meta.url is always the real path. */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === import.meta.url;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main().catch((err: unknown) => {
    process.stderr.write(`rtp-bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 3;
  });
}
