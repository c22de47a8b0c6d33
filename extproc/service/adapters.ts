/** The protocol adapters `portcullis serve` runs. */
import { kubeExtProcAdapter } from '../kube/index.ts';
import { postgresAdapter } from '../postgres/index.ts';
import type { DataPathAdapter } from '../streams/index.ts';

export const DATA_PATH_ADAPTERS: DataPathAdapter[] = [kubeExtProcAdapter(), postgresAdapter()];
