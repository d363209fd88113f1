/**
 * The HTTP endpoint of --metrics-listen: GET /metrics answers with the run's registry as Prometheus text; anything
 * else is 404. Bound before the run starts, so that a port already taken is refused before anything else is set up.
 */
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { Registry } from 'prom-client';
import { metricsUrl, type MetricsListen } from './listen.js';

/** The longest a run waits at its end for a last scrape: a scraper much slower than this is not watching closely. */
const LAST_SCRAPE_WAIT_MAX_MS = 10_000;

export class MetricsServer {
  /** When /metrics was last read, and the gap before that (the scraper's interval), ms since the epoch. */
  private lastScrapeMs: number | null = null;
  private scrapeGapMs: number | null = null;
  private onScrape: (() => void) | null = null;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  private scraped(): void {
    const now = Date.now();
    if (this.lastScrapeMs !== null) this.scrapeGapMs = now - this.lastScrapeMs;
    this.lastScrapeMs = now;
    this.onScrape?.();
  }

  /**
   * How long close({ lastScrape: true }) may wait: two of the scraper's intervals (one may be in progress), at most
   * 10 s; 0 when nobody has scraped twice (no interval known, or no scraper at all).
   */
  get lastScrapeWaitMs(): number {
    return this.scrapeGapMs === null ? 0 : Math.min(LAST_SCRAPE_WAIT_MAX_MS, 2 * this.scrapeGapMs);
  }

  /** Listens on `listen`; a string says why it could not (the port in use, an address not on this machine). */
  static async start(listen: Pick<MetricsListen, 'host' | 'port'>, registry: Registry): Promise<MetricsServer | string> {
    let self: MetricsServer | null = null;
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('rtp-bench serves /metrics only\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : text);
          self?.scraped();
        },
        (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err instanceof Error ? err.message : String(err)}\n`),
      );
    });
    const url = metricsUrl(listen);
    try {
      server.listen(listen.port, listen.host);
      await once(server, 'listening');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const where = `--metrics-listen ${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`;
      if (code === 'EADDRINUSE') return `${where}: the port is in use (another run, or another exporter?): choose another port, e.g. --metrics-listen ${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port + 1}`;
      if (code === 'EADDRNOTAVAIL') return `${where}: ${listen.host} is not an address of this machine`;
      if (code === 'EACCES') return `${where}: not allowed to listen on port ${listen.port} (below 1024 needs root)`;
      return `${where}: cannot listen: ${(err as Error).message}`;
    }
    // The server must not keep the process alive by itself: the run decides when it ends.
    server.unref();
    self = new MetricsServer(server, url);
    return self;
  }

  /**
   * Stops listening and drops open connections (Prometheus keeps its scrape connection alive, which close() would
   * wait for). With `lastScrape`, first waits (bounded: lastScrapeWaitMs) for one more scrape, so that the run's
   * final figures (every call ended, the last packets counted) reach the scraper and not only the second before.
   */
  async close(options: { lastScrape?: boolean } = {}): Promise<void> {
    if (!this.server.listening) return;
    const waitMs = options.lastScrape === true ? this.lastScrapeWaitMs : 0;
    if (waitMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        this.onScrape = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.onScrape = null;
    }
    const closed = once(this.server, 'close');
    this.server.close();
    this.server.closeAllConnections();
    await closed;
  }
}
