// What a command of `xm`/`xl` works with (launcher/xm_cmdtable.ts): xend
// behind a typed call, the terminal, and the errors that become xl's
// messages and exit statuses in runXm (launcher/xm.ts).
import type { DomainRecord, XendMethod, XendParams, XendResult } from '../shared/toolstack/xend_api.js';

export interface XmIo {
  stdout: { write(chunk: string | Uint8Array): unknown };
  stderr: { write(chunk: string | Uint8Array): unknown };
  /** Keyboard for `console` and `top`; a TTY is put in raw mode while in use. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?(mode: boolean): unknown };
  env?: NodeJS.ProcessEnv;
  /** 'xl' (default) or 'xm': only changes the program name in messages and mem-set's default unit. */
  prog?: 'xl' | 'xm';
}

export interface XmContext {
  readonly prog: 'xl' | 'xm';
  readonly io: XmIo;
  /** Whether stdout is a terminal (top redraws in place on one). */
  readonly isTTY: boolean;
  /**
   * Call one xend method with exactly its parameters (XendApi). An unknown
   * domain is NoSuchDomain; an unreachable xend an XmError.
   */
  call<M extends XendMethod>(method: M, ...params: XendParams<M>): Promise<XendResult<M>>;
  /** Every domain's record, ordered by id. */
  domains(): Promise<DomainRecord[]>;
  out(s: string | Uint8Array): void;
  err(s: string): void;
}

/** Bad usage: status 2, the message, and (unless it is an option error) the command's help. */
export class UsageError extends Error {
  constructor(message: string, readonly showHelp = true) { super(message); }
}

/** A failure whose message is already what xl prints: status 1. */
export class XmError extends Error {}

/** xend knows no such domain (ERROR_INVALID_DOMAIN), in xl's words. */
export class NoSuchDomain extends XmError {
  constructor(dom: unknown) { super(`${dom} is an invalid domain identifier (rc=-6)`); }
}

export interface Opts {
  flags: Set<string>;
  values: Map<string, string>;
  /** The operands after the options. */
  rest: string[];
}

/**
 * Split options from operands as getopt(3) does for xl: single letters from
 * `known`, a letter followed by ':' takes a value (`-d 5` or `-d5`), options
 * end at the first operand or `--`.
 */
export function getopt(args: readonly string[], known: string): Opts {
  const flags = new Set<string>();
  const values = new Map<string, string>();
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') { rest.push(...args.slice(i + 1)); break; }
    if (/^-[A-Za-z]+$/.test(a) && rest.length === 0) {
      for (let j = 1; j < a.length; j++) {
        const c = a[j]!;
        const k = known.indexOf(c);
        if (k < 0 || c === ':') throw new UsageError(`option \`${c}' not supported.`, false);
        if (known[k + 1] === ':') {
          const v = a.slice(j + 1) || args[++i];
          if (v === undefined) throw new UsageError(`option \`${c}' requires an argument.`, false);
          values.set(c, v);
          break;
        }
        flags.add(c);
      }
      continue;
    }
    rest.push(a);
  }
  return { flags, values, rest };
}
