// infra/'s manifests hang together: they parse as YAML, every name one of them refers to (Service,
// ConfigMap key, Secret, port name, file, serve flag, env var) exists where it points, and the
// Dockerfile only copies what is there. What cannot run here (Docker, a Kubernetes API) is checked
// this way; the NATS configs and the compose topology run for real in infra-nats / infra-compose-nodes.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, parseDocument } from 'yaml';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const read = (p: string): string => readFileSync(join(root, p), 'utf8');

// Loose shapes: only the fields these checks read.
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string }; fieldRef?: unknown } }>;
  ports?: Array<{ name: string; containerPort: number }>;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Array<{ name: string; configMap?: { name: string } }>;
}
interface K8sDoc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  spec?: {
    replicas?: number;
    serviceName?: string;
    podManagementPolicy?: string;
    clusterIP?: string;
    publishNotReadyAddresses?: boolean;
    selector?: Record<string, string> & { matchLabels?: Record<string, string> };
    ports?: Array<{ name: string; port: number; targetPort: string | number }>;
    template?: { metadata: { labels: Record<string, string> }; spec: PodSpec };
    volumeClaimTemplates?: Array<{ metadata: { name: string } }>;
  };
}

function yamlDocs(p: string): K8sDoc[] {
  const docs = parseAllDocuments(read(p));
  for (const d of docs) expect(d.errors.map(String), p).toEqual([]);
  return docs.map((d) => d.toJS() as K8sDoc);
}

const k8sFiles = ['infra/k8s/nats.yaml', 'infra/k8s/streamfleet.yaml', 'infra/k8s/secret.example.yaml', 'infra/k8s/kustomization.yaml'];

/** The flags `streamfleet serve --help` lists. */
let serveFlags: Set<string>;
beforeAll(async () => {
  const { stdout } = await run(process.execPath, ['bin/streamfleet.js', 'serve', '--help'], { cwd: root });
  serveFlags = new Set([...stdout.matchAll(/--([a-z][a-z-]*)/g)].map((m) => m[1]));
  expect(serveFlags.has('nats')).toBe(true);
});

/** `--flag=value` / `--flag value` lists to the flag names. */
const flagsOf = (args: string[]): string[] => args.filter((a) => /^--[a-z]/.test(a)).map((a) => a.slice(2).split('=')[0]);

describe('infra/Dockerfile', () => {
  const lines = read('infra/Dockerfile')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((l) => l.trim() && !l.trim().startsWith('#'));
  const instr = (name: string): string[] => lines.filter((l) => l.startsWith(`${name} `)).map((l) => l.slice(name.length + 1).trim());

  it('builds on node:20-bookworm-slim, installs with npm ci and the onnxruntime install skipped, runs as a non-root user', () => {
    expect(instr('FROM')).toEqual(['node:20-bookworm-slim']);
    expect(instr('ENV').join(' ')).toMatch(/ONNXRUNTIME_NODE_INSTALL=skip/);
    expect(instr('RUN').some((r) => /\bnpm ci\b/.test(r))).toBe(true);
    const users = instr('USER');
    expect(users.length).toBeGreaterThan(0);
    expect(['root', '0']).not.toContain(users.at(-1));
  });

  it('copies only paths that exist, none of them excluded by the ignore list in infra/README.md', () => {
    const ignore = /```gitignore\n([\s\S]*?)```/.exec(read('infra/README.md'))?.[1].split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    expect(ignore?.length).toBeGreaterThan(0);
    for (const c of instr('COPY')) {
      const parts = c.split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const src of parts.slice(0, -1)) {
        expect(existsSync(join(root, src)), src).toBe(true);
        const top = src.split('/')[0];
        expect(ignore!.filter((g) => g.replace(/\/$/, '') === top || g === src), src).toEqual([]);
      }
    }
  });

  it('exposes 8000 and 3389, checks health on /livez at the port CMD gives, and runs `serve --host 0.0.0.0`', () => {
    expect(instr('EXPOSE').join(' ').split(/\s+/).sort()).toEqual(['3389', '8000']);
    const cmd = JSON.parse(instr('CMD')[0]) as string[];
    const port = cmd[cmd.indexOf('--port') + 1];
    expect(instr('HEALTHCHECK')[0]).toContain(`http://127.0.0.1:${port}/livez`);
    const entry = JSON.parse(instr('ENTRYPOINT')[0]) as string[];
    expect(entry.slice(entry.indexOf('node'), entry.indexOf('--host') + 2)).toEqual(['node', 'bin/streamfleet.js', 'serve', '--host', '0.0.0.0']);
    for (const f of flagsOf([...entry, ...cmd])) expect(serveFlags, f).toContain(f);
  });
});

describe('infra/compose.yaml', () => {
  interface Service {
    image?: string;
    command?: string[];
    entrypoint?: string[];
    volumes?: string[];
    healthcheck?: { test: string[] };
    depends_on?: Record<string, { condition: string }>;
  }
  let services: Record<string, Service>;
  beforeAll(() => {
    const doc = parseDocument(read('infra/compose.yaml'), { merge: true });
    expect(doc.errors.map(String)).toEqual([]);
    services = (doc.toJS({ maxAliasCount: 100 }) as { services: Record<string, Service> }).services;
  });

  it('runs three NATS servers, each on its own cluster config file, with a healthcheck', () => {
    for (const n of [1, 2, 3]) {
      const s = services[`nats-${n}`];
      const conf = s.volumes?.find((v) => v.endsWith(':/etc/nats/nats.conf:ro'));
      expect(conf).toBe(`./nats/cluster/nats-${n}.conf:/etc/nats/nats.conf:ro`);
      expect(existsSync(join(root, 'infra', conf!.split(':')[0]))).toBe(true);
      expect(s.healthcheck?.test.join(' ')).toContain('/healthz');
    }
  });

  it('creates the buckets once all three are healthy, and starts the nodes only after that', () => {
    const init = services['nats-init'];
    expect(init.command?.join(' ')).toContain('--replicas 3');
    expect(existsSync(join(root, init.entrypoint!.at(-1)!))).toBe(true);
    for (const n of [1, 2, 3]) expect(init.depends_on?.[`nats-${n}`]?.condition).toBe('service_healthy');
    for (const name of ['node-a', 'node-b', 'node-c']) expect(services[name].depends_on?.['nats-init']?.condition).toBe('service_completed_successfully');
  });

  it('runs three streamfleet nodes with distinct node ids on all three NATS servers, with healthchecks and only flags serve knows', () => {
    const ids = ['node-a', 'node-b', 'node-c'].map((name) => {
      const s = services[name];
      expect(s.healthcheck?.test.join(' ')).toContain('/livez');
      for (const f of flagsOf(s.command!)) expect(serveFlags, `${name} --${f}`).toContain(f);
      expect(s.command!.find((a) => a.startsWith('--nats='))).toBe('--nats=nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222');
      return s.command!.find((a) => a.startsWith('--node-id='));
    });
    expect(new Set(ids).size).toBe(3);
    expect(Object.keys(services).filter((n) => services[n].command?.some((a) => a.startsWith('--node-id=')))).toEqual(['node-a', 'node-b', 'node-c']);
  });
});

describe('infra/k8s', () => {
  const all = (): K8sDoc[] => k8sFiles.slice(0, 3).flatMap(yamlDocs);
  const find = (kind: string, name: string): K8sDoc => {
    const d = all().find((x) => x.kind === kind && x.metadata.name === name);
    expect(d, `${kind}/${name}`).toBeDefined();
    return d!;
  };
  const selects = (svc: K8sDoc, labels: Record<string, string>): boolean =>
    Object.entries(svc.spec!.selector!).every(([k, v]) => labels[k] === v);

  it('every file parses and kustomization.yaml lists files that exist (the example Secret left out)', () => {
    for (const f of k8sFiles) expect(yamlDocs(f).length).toBeGreaterThan(0);
    const kust = yamlDocs('infra/k8s/kustomization.yaml')[0] as unknown as { resources: string[] };
    for (const r of kust.resources) expect(existsSync(join(root, 'infra/k8s', r)), r).toBe(true);
    expect(kust.resources).not.toContain('secret.example.yaml');
  });

  it('NATS: a 3-replica StatefulSet on a headless Service, with its config from the ConfigMap and routes to its pods', () => {
    const sts = find('StatefulSet', 'nats');
    expect(sts.spec!.replicas).toBe(3);
    expect(sts.spec!.podManagementPolicy).toBe('Parallel');
    expect(sts.spec!.volumeClaimTemplates?.map((v) => v.metadata.name)).toContain('data');
    const headless = find('Service', sts.spec!.serviceName!);
    expect(headless.spec!.clusterIP).toBe('None');
    expect(headless.spec!.publishNotReadyAddresses).toBe(true);
    const pod = sts.spec!.template!;
    expect(selects(headless, pod.metadata.labels)).toBe(true);
    const cmName = pod.spec.volumes!.find((v) => v.configMap)!.configMap!.name;
    const conf = find('ConfigMap', cmName).data!['nats.conf'];
    const routes = [...conf.matchAll(/nats-route:\/\/([^:"]+):6222/g)].map((m) => m[1]);
    expect(routes).toEqual([0, 1, 2].map((i) => `${sts.metadata.name}-${i}.${headless.metadata.name}`));
    expect(conf).toMatch(/server_name:\s*\$POD_NAME/);
    const env = pod.spec.containers[0].env!.map((e) => e.name);
    expect(env).toContain('POD_NAME');
  });

  it('streamfleet: probes, resources, the token from the Secret, --nats at the NATS Service, only known flags and defined $(VARS)', () => {
    const dep = find('Deployment', 'streamfleet');
    expect(dep.spec!.replicas).toBe(3);
    const pod = dep.spec!.template!;
    const c = pod.spec.containers.find((x) => x.name === 'streamfleet')!;
    const portOf = (p: string | number): number | undefined => (typeof p === 'number' ? p : c.ports!.find((x) => x.name === p)?.containerPort);
    expect(c.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(c.livenessProbe?.httpGet?.path).toBe('/livez');
    expect(portOf(c.readinessProbe!.httpGet!.port)).toBe(8000);
    expect(c.resources?.requests?.cpu).toBeDefined();
    expect(c.resources?.requests?.memory).toBeDefined();
    expect(c.resources?.limits?.memory).toBeDefined();

    const token = c.env!.find((e) => e.name === 'SF_AUTH_TOKEN')?.valueFrom?.secretKeyRef;
    const secret = yamlDocs('infra/k8s/secret.example.yaml')[0];
    expect(token).toEqual({ name: secret.metadata.name, key: Object.keys(secret.stringData!)[0] });
    for (const e of c.env!) {
      const ref = e.valueFrom?.configMapKeyRef;
      if (ref) expect(Object.keys(find('ConfigMap', ref.name).data!), e.name).toContain(ref.key);
    }

    const args = c.args!;
    for (const f of flagsOf(args)) expect(serveFlags, f).toContain(f);
    for (const m of args.join(' ').matchAll(/\$\(([A-Z_]+)\)/g)) expect(c.env!.map((e) => e.name)).toContain(m[1]);
    const natsHost = /^--nats=nats:\/\/([^:]+):(\d+)$/.exec(args.find((a) => a.startsWith('--nats='))!);
    const natsSvc = find('Service', natsHost![1]);
    expect(natsSvc.spec!.ports!.map((p) => p.port)).toContain(Number(natsHost![2]));
    expect(natsSvc.spec!.clusterIP).not.toBe('None');

    // The init container runs a file the image has, against the same NATS URL.
    const init = pod.spec.initContainers!.find((x) => x.name === 'ensure-buckets')!;
    const script = init.command!.find((a) => a.endsWith('.ts'))!;
    expect(read('infra/Dockerfile')).toContain(`COPY ${script} `);
    expect(init.args!.join(' ')).toContain(`--nats ${natsHost![0].slice('--nats='.length)}`);
    expect(init.image).toBe(c.image);
  });

  it('streamfleet: Services for the API (8000) and trickle (3389) ports select its pods', () => {
    const pod = find('Deployment', 'streamfleet').spec!.template!;
    const c = pod.metadata.labels;
    const ports = pod.spec.containers[0].ports!;
    const svcs = all().filter((d) => d.kind === 'Service' && selects(d, c));
    const targets = svcs.flatMap((s) => s.spec!.ports!.map((p) => ports.find((x) => x.name === p.targetPort || x.containerPort === p.targetPort)?.containerPort));
    expect(targets.sort()).toEqual([3389, 8000]);
  });

  it.skipIf(!existsSync('/usr/bin/kubectl') && !existsSync('/usr/local/bin/kubectl'))('kubectl kustomize renders the set (stricter YAML than the JS parser)', async () => {
    const { stdout } = await run('kubectl', ['kustomize', join(root, 'infra/k8s')]);
    const kinds = parseAllDocuments(stdout).map((d) => (d.toJS() as K8sDoc).kind);
    expect(kinds.sort()).toEqual(['ConfigMap', 'ConfigMap', 'Deployment', 'PodDisruptionBudget', 'PodDisruptionBudget', 'Service', 'Service', 'Service', 'Service', 'StatefulSet']);
  });
});
