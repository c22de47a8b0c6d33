/**
 * Counters and histograms for the data path, read by the Prometheus registry at scrape time. prom-client's own
 * metrics validate and hash the labels object on every inc()/observe(), even through a labels() child (several µs,
 * twice per action); here a label set's series is looked up once and then counted with plain arithmetic. The registry
 * reads them as any metric (registerMetric() and get()), in the same exposition format.
 */
import type { Registry } from 'prom-client';

type Labels<L extends string> = Record<L, string>;

/** What the registry reads from a metric at scrape time (prom-client's get() shape). */
export interface ScrapedMetric {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  values: { metricName?: string; labels: Record<string, string | number>; value: number }[];
}

interface TallyOptions<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
  registers: Registry[];
}

/** One label set's count. */
export interface CounterSeries {
  inc(by?: number): void;
}

/** One label set's observations. */
export interface HistogramSeries {
  observe(value: number): void;
}

/** The series of each label set, found by the label values joined (label values never hold a newline here). */
abstract class Tally<L extends string, S> {
  readonly name: string;
  readonly help: string;
  abstract readonly type: 'counter' | 'histogram';
  readonly aggregator = 'sum' as const;
  protected readonly series = new Map<string, { labels: Labels<L>; state: S }>();

  constructor(private readonly opts: TallyOptions<L>) {
    this.name = opts.name;
    this.help = opts.help;
    // The registry holds any object with a name and get().
    for (const r of opts.registers) r.registerMetric(this as never);
  }

  /** The series of `labels`, made on first use; keep it to count without a lookup. */
  labels(labels: Labels<L>): S {
    let key = '';
    for (const n of this.opts.labelNames) key += `${labels[n]}\n`;
    let s = this.series.get(key);
    if (!s) {
      const own = {} as Labels<L>;
      for (const n of this.opts.labelNames) own[n] = labels[n];
      s = { labels: own, state: this.newSeries() };
      this.series.set(key, s);
    }
    return s.state;
  }

  protected abstract newSeries(): S;

  /** Nothing to reset: series keep their totals for the life of the process, as Prometheus counters do. */
  reset(): void {}
}

export class CounterTally<L extends string> extends Tally<L, CounterSeries & { value: number }> {
  readonly type = 'counter' as const;

  protected newSeries(): CounterSeries & { value: number } {
    return {
      value: 0,
      inc(by = 1) {
        this.value += by;
      },
    };
  }

  get(): ScrapedMetric {
    const values: ScrapedMetric['values'] = [];
    for (const { labels, state } of this.series.values()) values.push({ labels, value: state.value });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

interface HistogramState extends HistogramSeries {
  /** Observations ≤ each bound (not cumulative; summed at scrape). */
  counts: number[];
  sum: number;
  count: number;
}

export class HistogramTally<L extends string> extends Tally<L, HistogramState> {
  readonly type = 'histogram' as const;
  private readonly bounds: readonly number[];

  constructor(opts: TallyOptions<L> & { buckets: readonly number[] }) {
    super(opts);
    this.bounds = [...opts.buckets].sort((a, b) => a - b);
  }

  protected newSeries(): HistogramState {
    const bounds = this.bounds;
    return {
      counts: bounds.map(() => 0),
      sum: 0,
      count: 0,
      observe(value: number) {
        this.sum += value;
        this.count++;
        for (let i = 0; i < bounds.length; i++) {
          if (value <= bounds[i]) {
            this.counts[i]++;
            return;
          }
        }
      },
    };
  }

  get(): ScrapedMetric {
    const values: ScrapedMetric['values'] = [];
    for (const { labels, state } of this.series.values()) {
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += state.counts[i];
        values.push({ metricName: `${this.name}_bucket`, labels: { le, ...labels }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...labels }, value: state.count });
      values.push({ metricName: `${this.name}_sum`, labels, value: state.sum });
      values.push({ metricName: `${this.name}_count`, labels, value: state.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
