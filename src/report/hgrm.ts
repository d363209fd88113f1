/**
 * Histograms as HdrHistogram percentile distribution text (--hgrm DIR, rtp-bench merge --hgrm): the `.hgrm` files
 * that HdrHistogram's outputPercentileDistribution prints and wrk2 and the HdrHistogram plotter read. hdr-histogram-js
 * has the same printer built in, so it is used as is (5 ticks per half distance, its default); values are divided
 * by the metric's recording scale, so they are in the metric's unit (ms for every ...Ms metric). Pure.
 */
import * as hdr from 'hdr-histogram-js';
import { METRICS, METRIC_NAMES, isMetricName, type MetricName } from '../stats/histogram.js';

/** One histogram's .hgrm text: header "Value Percentile TotalCount 1/(1-Percentile)", rows, Mean/Max footer. */
export function hgrmText(encoded: string, metric: MetricName): string {
  const histogram = hdr.decodeFromCompressedBase64(encoded, 64, false);
  return histogram.outputPercentileDistribution(5, METRICS[metric].scale);
}

/** A results file's histograms (name -> compressed base64) as `<metric>.hgrm` files, in METRICS order. */
export function hgrmFiles(histograms: Readonly<Record<string, string | undefined>>): { name: string; text: string }[] {
  const out: { name: string; text: string }[] = [];
  for (const name of METRIC_NAMES) {
    const encoded = histograms[name];
    if (encoded !== undefined && isMetricName(name)) out.push({ name: `${name}.hgrm`, text: hgrmText(encoded, name) });
  }
  return out;
}
